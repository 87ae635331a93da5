"""``spikenas --help`` lists every subcommand, and each subcommand's ``--help`` its own settings
(the command line builds only the parser of the subcommand it names: ``SpikenasCLI``)."""

from __future__ import annotations

import pytest

from spikenas.app.cli import SpikenasCLI, main

OWN_SETTING = {"fit": "--ckpt_path", "validate": "--ckpt_path", "test": "--ckpt_path", "predict": "--return_predictions",
               "search": "--budget", "analyze": "--studies", "front": "--budgets", "export": "--target"}


def help_text(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_the_listing_names_every_subcommand(capsys):
    text = help_text(capsys)
    assert set(OWN_SETTING) == set(SpikenasCLI.subcommands())
    assert all(name in text for name in OWN_SETTING)


@pytest.mark.parametrize("subcommand", list(OWN_SETTING))
def test_each_subcommand_help_shows_its_own_settings_and_the_trainers(capsys, subcommand):
    text = help_text(capsys, subcommand)
    assert OWN_SETTING[subcommand] in text and "--trainer.max_epochs" in text and "--model.macro.timesteps" in text
