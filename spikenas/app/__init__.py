"""The command face: the `spikenas` command (LightningCLI), its trainer methods, the profile command, config-file checks."""
