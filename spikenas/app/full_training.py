"""A chosen network trained with the full recipe and tested: ``spikenas fit`` then ``spikenas test``,
each in a process of its own.

``spikenas front --full_training true`` trains every point of the front this way. The best
checkpoint by validation accuracy is tested on the test set; an interrupted training goes on
from its last checkpoint when run again into the same directory.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from spikenas.base.errors import SpikenasError


def _spikenas(*args: str) -> None:
    """``spikenas ARGS`` in a process of its own (a training's memory and global state end with
    it); its failure is one line, the command's own last line."""
    done = subprocess.run([sys.executable, "-m", "spikenas", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SpikenasError(f"spikenas {args[0]} --config {args[2]} failed (exit {done.returncode}): {last[:300]}")


def fit_and_test(final: Path, directory: Path) -> float:
    """Test accuracy (a fraction) of ``final``'s network after ``spikenas fit --config final``,
    its logs and checkpoints under ``directory`` (``fit/`` and ``test/``)."""
    common = ["--trainer.default_root_dir", str(directory), "--trainer.enable_progress_bar", "false",
              "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.init_args.save_dir", str(directory)]
    fits = sorted((directory / "fit").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    lasts = [f / "checkpoints" / "last.ckpt" for f in fits if (f / "checkpoints" / "last.ckpt").is_file()]
    resume = ["--ckpt_path", str(lasts[-1])] if lasts else []
    _spikenas("fit", "--config", str(final), *common, "--trainer.logger.init_args.name", "fit", *resume)
    bests = list((directory / "fit").rglob("best-*.ckpt"))
    if not bests:
        raise SpikenasError(f"the training of {final} saved no best checkpoint under {directory / 'fit'}")
    best = max(bests, key=lambda p: float(p.stem.rsplit("-acc", 1)[1]))
    _spikenas("test", "--config", str(final), "--ckpt_path", str(best), *common, "--trainer.logger.init_args.name", "test")
    metrics = sorted((directory / "test").rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)[-1]
    with metrics.open(newline="") as handle:
        return float([r for r in csv.DictReader(handle) if r.get("test/acc")][-1]["test/acc"])
