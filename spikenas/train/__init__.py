"""Training: the LightningModule, its metrics, quantisation-aware training and safe checkpoints."""
