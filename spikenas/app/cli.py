"""The ``spikenas`` command: LightningCLI with ``search``, ``analyze`` and ``export`` beside fit/validate/test/predict.

``spikenas plugins`` lists what the plugins registered and ``spikenas profile --config X.yaml``
prints a config's network footprint (:mod:`spikenas.app.profile_command`); everything else is LightningCLI, so
every subcommand takes ``--config file.yaml``, ``--print_config`` and dotted overrides.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from jsonargparse import ArgumentError
from lightning.pytorch.cli import ArgsType, LightningCLI
from lightning.pytorch.utilities.model_registry import _is_registry

from spikenas.base.allocator import tune_for_command
from spikenas.train.checkpoint import LastEveryEpochCheckpoint, SafeCheckpointIO, read_checkpoint
from spikenas.app.configfile import check_config_args, one_line
from spikenas.base.errors import SpikenasError
from spikenas.base.rundir import SaveConfigInClaimedRun, claim_logger_run_dir


LIGHTNING_CKPT_ALIASES = ("last", "best", "hpc")
"""``--ckpt_path`` values Lightning resolves to a file itself; the trainer reads that file through
its :class:`~spikenas.train.checkpoint.SafeCheckpointIO` (``Trainer`` allows no other), like any other."""


class SpikenasCLI(LightningCLI):
    """LightningCLI whose trainer also has ``search``, ``analyze`` and ``export`` (see :class:`spikenas.app.trainer.Trainer`)."""

    _checkpoint: tuple[str, dict] | None = None  # --ckpt_path as given, and what it holds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cli_args = kwargs.get("args")
        argv = sys.argv[1:] if cli_args is None else cli_args
        # the command line as typed, for the reports that say how they were made
        self.command = "spikenas " + " ".join(map(str, argv))
        # a command line that starts with its subcommand (args may also be a dict or a Namespace)
        first = argv[0] if isinstance(argv, (list, tuple)) and argv else None
        self._invoked = first if first in self.subcommands() else None
        super().__init__(*args, **kwargs)

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any):
        """Lightning's, for the subcommand the command line names; the others get a bare parser
        (their name and description, for the listing). Building each subcommand's arguments
        from the signatures and docstrings of the model, data, trainer and callbacks takes about
        0.2 s, so a command that names its subcommand starts 1.5 s sooner. With no subcommand
        first (``spikenas --help``, a top-level ``--config``), every parser is built."""
        if self._invoked is None or subcommand == self._invoked:
            return super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        self._subcommand_method_arguments[subcommand] = []
        return self.init_parser(**kwargs)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLI.subcommands(), "search": {"model", "datamodule"}, "analyze": {"model", "datamodule"},
                "front": {"model", "datamodule"},
                "export": {"model", "datamodule"}}

    def add_arguments_to_parser(self, parser) -> None:
        # the best checkpoint by validation accuracy and the last epoch's (``--checkpoint.*`` to change)
        parser.add_lightning_class_args(LastEveryEpochCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch:03d}-acc{val/acc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        # the data decide the classes and the image shape; users never repeat them
        parser.link_arguments("data.num_classes", "model.macro.num_classes", apply_on="instantiate")
        parser.link_arguments("data.input_shape", "model.macro.input_shape", apply_on="instantiate")

    def instantiate_classes(self) -> None:
        """Lightning's, with a value that cannot build the model, data or trainer (a setting set
        to null, a mapping where a number belongs: what the type checks let through) said in one
        line instead of a traceback from deep inside jsonargparse."""
        try:
            super().instantiate_classes()
        except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
            raise SpikenasError(
                f"{self.subcommand or 'spikenas'}: the config's values do not build the model, data and trainer: "
                f"{type(exc).__name__}: {one_line(str(exc))[:300]} (a setting is null or of the wrong type; "
                f"--print_config shows them)") from None

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        """The trainer, with the ``checkpoint`` callback only where it saves something: ``fit``
        with checkpointing on. So ``--trainer.enable_checkpointing false`` works, and
        validate/test/predict restore another run's checkpoint without Lightning warning that
        its ``dirpath`` changed (or that its callback is missing). Elsewhere the ``checkpoint``
        slot holds a plain, inert :class:`~lightning.pytorch.Callback`."""
        prefix = f"{self.subcommand}." if self.subcommand else ""
        trainer = {**self.config_init.get(f"{prefix}trainer", {}), **kwargs}
        if self.subcommand != "fit" or trainer.get("enable_checkpointing") is False:
            if isinstance(self.config_init.get(f"{prefix}checkpoint"), ModelCheckpoint):
                self.config_init[f"{prefix}checkpoint"] = pl.Callback()
            # the checkpoint's ModelCheckpoint state is left out on purpose: no advice to add it
            warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`")
        trainer = super().instantiate_trainer(**kwargs)
        if self.subcommand in ("fit", "validate", "test", "predict"):
            claim_logger_run_dir(trainer, self.subcommand)
        if self._checkpoint is not None and isinstance(trainer.strategy.checkpoint_io, SafeCheckpointIO):
            trainer.strategy.checkpoint_io.preloaded(*self._checkpoint)
        return trainer

    def _parse_ckpt_path(self) -> None:
        """Read ``--ckpt_path`` once, safely (:func:`~spikenas.train.checkpoint.read_checkpoint`: a
        URL is downloaded first; ``weights_only=True``), for the trainer to use. Lightning's own
        version loads URLs with ``weights_only=False`` and replaces the config's model with the
        checkpoint's hyper-parameters; here the config decides the network, and a checkpoint of
        another network is refused when it is loaded (``SNNClassifier.on_load_checkpoint``)."""
        self._checkpoint = None
        subcommand = self.config.get("subcommand")
        location = self.config[subcommand].get("ckpt_path") if subcommand else None
        if _is_registry(location):
            raise SpikenasError(f"--ckpt_path {location!r}: Lightning's model registry is not supported (give a local "
                                "file or an http(s) URL)")
        if location and str(location) not in LIGHTNING_CKPT_ALIASES:
            self._checkpoint = (str(location), read_checkpoint(location))

    def _run_subcommand(self, subcommand: str) -> None:
        """Lightning answers Ctrl-C inside ``fit``/``test`` with its own message and exit status
        1; spikenas says how to resume it, with status 130, as for every other command."""
        try:
            super()._run_subcommand(subcommand)
        except SystemExit:
            if getattr(self, "trainer", None) is not None and self.trainer.interrupted:
                raise KeyboardInterrupt from None
            raise

    def search(self, **kwargs) -> None:
        from spikenas.search.driver import run_search

        run_search(self.trainer, config=self.subcommand_config(), **kwargs)

    def front(self, **kwargs) -> None:
        from spikenas.app.full_training import fit_and_test
        from spikenas.search.front import run_front
        from spikenas.search.settings import SearchSettings

        search = kwargs.pop("search", None)
        run_front(self.trainer, config=self.subcommand_config(), search=search or SearchSettings(),
                  fit_and_test=fit_and_test, **kwargs)

    def analyze(self, **kwargs) -> None:
        from spikenas.analysis.driver import run_analysis

        run_analysis(self.trainer, config=self.subcommand_config(), command=self.command, **kwargs)

    def subcommand_config(self) -> dict[str, Any]:
        """The running subcommand's whole config as plain data (what ``--print_config`` shows)."""
        import yaml

        dumped = self.parser.dump(self.config, skip_none=False, skip_validation=True)
        return yaml.safe_load(dumped)[self.subcommand]


DESCRIPTION = (
    "spikenas: fast, memory-aware architecture search for spiking networks. Besides the "
    "subcommands below: 'spikenas plugins' lists the registered operations, cost models, scores "
    "and strategies; 'spikenas profile --config X.yaml' prints a config's network footprint."
)


def _drop_lightning_tips(record: logging.LogRecord) -> bool:
    """Drops Lightning's advertisement for its cloud services, which every Trainer prints."""
    return not str(record.msg).startswith("💡 Tip")


def _one_line_warnings(show):
    """``warnings.showwarning`` that prints a disabled plugin's warning, and what a checkpoint
    had that is left alone, as its one line."""
    from spikenas.train.checkpoint import CheckpointWarning
    from spikenas.plugin.manager import PluginDisabledWarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, (PluginDisabledWarning, CheckpointWarning)):
            print(message, file=file or sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    showwarning.spikenas = True
    return show if getattr(show, "spikenas", False) else showwarning


def main(args: ArgsType = None) -> None:
    """Entry point of the ``spikenas`` console script (``args`` as on the command line)."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv[:1] == ["search"]:  # scoring's large tensors reuse freed memory (training does not gain)
        tune_for_command()
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="norse")
    warnings.showwarning = _one_line_warnings(warnings.showwarning)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_drop_lightning_tips)
    try:
        if argv[:1] == ["plugins"]:
            from spikenas.plugin.listing import format_plugins

            print(format_plugins())
            return
        if argv[:1] == ["profile"]:
            from spikenas.app.profile_command import main as profile

            print(profile(argv[1:]))
            return
        check_config_args(argv)
        from spikenas.data import SpikenasDataModule
        from spikenas.train.classifier import SNNClassifier
        from spikenas.app.trainer import Trainer

        SpikenasCLI(
            SNNClassifier,
            SpikenasDataModule,
            trainer_class=Trainer,
            subclass_mode_data=True,
            seed_everything_default=0,
            args=None if args is None else argv,
            save_config_callback=SaveConfigInClaimedRun,
            parser_kwargs={"description": DESCRIPTION, "exit_on_error": False},
        )
    except SpikenasError as exc:
        sys.exit(f"spikenas: error: {exc}")
    except BrokenPipeError:  # `spikenas plugins | head`: the reader has gone, say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:  # the machine's, not the input's: a full or read-only disk under a logger or a library
        where = f" ({exc.filename})" if exc.filename else ""
        sys.exit(f"spikenas: error: {argv[0] if argv else 'spikenas'}: {exc.strerror or exc}{where}; outputs written "
                 "before it are whole (checkpoints and results are written atomically)")
    except OverflowError as exc:  # jsonargparse turning a huge integer into a float setting, or a size nobody means
        sys.exit(f"spikenas: error: {argv[0] if argv else 'spikenas'}: a number in the settings is too large ({exc})")
    except ArgumentError as exc:  # jsonargparse's, often a hundred lines: its gist, and where to look
        command = f"spikenas {argv[0]}" if argv and argv[0] in SpikenasCLI.subcommands() else "spikenas"
        sys.exit(f"spikenas: error: {one_line(str(exc))} ({command} --help lists the settings)")
    except KeyboardInterrupt:
        command = argv[0] if argv else "command"
        resumable = command in ("search", "analyze", "fit")
        hint = {"fit": " (from its last.ckpt: add --ckpt_path <run>/checkpoints/last.ckpt)"}.get(command, "")
        print(f"spikenas: {command} interrupted" + (f"; the same command resumes it{hint}" if resumable else ""), file=sys.stderr)
        sys.exit(130)
