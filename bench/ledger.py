"""A committed record of a long bench's finished searches and trainings, so that a bench longer
than one machine's life adds up across sessions.

A ledger is a folder in the repository (``bench/results/<bench>/``) holding:

- ``searches.csv``: one row per searched pick, ``budget, arm, search_s, network, commit,
  recorded, machine``, with the pick's ``final.yaml`` beside it as ``<budget>-<arm>.yaml``;
- ``trainings.csv``: one row per finished training, ``budget, arm, seed, epochs, network, code,
  test_acc, commit, recorded, machine``.

``network`` is the SHA-256 (first 16 hex digits) of what a ``final.yaml`` trains: its ``model``
section and its data settings, paths and worker counts left out, so the same pick written on
another machine hashes alike. ``code`` is the SHA-256 of the sources that train it (:data:`TRAINING_SOURCES`)
and the versions of torch, lightning, norse and torchmetrics: a training is reused only while
both match, and a change to how networks train makes the bench train them again. Rows are
written whole and atomically (the file replaced under a lock), so two bench processes may share
one ledger.
"""

from __future__ import annotations

import csv
import datetime
import fcntl
import hashlib
import io
import json
import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

import yaml

from spikenas.base.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]
SEARCH_FIELDS = ("budget", "arm", "search_s", "network", "commit", "recorded", "machine")
TRAINING_FIELDS = ("budget", "arm", "seed", "epochs", "network", "code", "test_acc", "commit", "recorded", "machine")
# what decides a training's result: the network, neuron, operation, space, data and training code, the CLI
# that reads the final.yaml, and the picks bench's recipe (train_and_test)
TRAINING_SOURCES = ("spikenas/base", "spikenas/data", "spikenas/network", "spikenas/neuron", "spikenas/ops",
                    "spikenas/plugin", "spikenas/space", "spikenas/train", "spikenas/lit.py", "spikenas/app/cli.py",
                    "spikenas/app/configfile.py", "spikenas/app/trainer.py", "bench/picks_fmnist.py")
LIBRARIES = ("torch", "lightning", "norse", "torchmetrics")
MACHINE_PATHS = ("root", "system_dir", "download", "num_workers")


def network_hash(final: Path) -> str:
    """What ``final`` (a ``final.yaml``) trains, hashed: ``model`` and the data settings, not paths."""
    config = yaml.safe_load(Path(final).read_text())
    data = dict(config.get("data") or {})
    data["init_args"] = {k: v for k, v in (data.get("init_args") or {}).items() if k not in MACHINE_PATHS}
    blob = json.dumps({"model": config["model"], "data": data}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def code_hash(root: Path = ROOT) -> str:
    """The training code's fingerprint: :data:`TRAINING_SOURCES` under ``root`` (every ``.py``,
    by path and content) and the installed versions of :data:`LIBRARIES`."""
    digest = hashlib.sha256()
    for source in TRAINING_SOURCES:
        path = root / source
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    for library in LIBRARIES:
        digest.update(f"{library}=={version(library)}\n".encode())
    return digest.hexdigest()[:16]


def _commit() -> str:
    """The repository's commit (``+dirty`` when tracked files other than the ledgers differ from it), or ``unknown``."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!bench/results"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _machine() -> str:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"{os.cpu_count()}-core CPU"
    return f"{platform.machine()} {device}, {torch.get_num_threads()} torch threads"


class Ledger:
    """The ledger in ``directory`` (created on the first record)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.code = code_hash()

    def _rows(self, name: str) -> list[dict[str, str]]:
        path = self.directory / name
        if not path.is_file():
            return []
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def _append(self, name: str, fields: tuple[str, ...], row: dict[str, object]) -> None:
        """Add ``row`` to ``name``, the whole file replaced atomically under an exclusive lock."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            rows = self._rows(name)
            stamp = {"commit": _commit(), "recorded": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
                     "machine": _machine()}
            rows.append({**stamp, **{k: str(v) for k, v in row.items()}})
            text = io.StringIO()
            writer = csv.DictWriter(text, fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            atomic_write(self.directory / name, text.getvalue())

    def pick(self, budget: str, arm: str) -> tuple[Path, float] | None:
        """The recorded pick of ``arm`` at ``budget``: its ``final.yaml`` here and its search seconds."""
        final = self.directory / f"{budget}-{arm}.yaml"
        rows = [r for r in self._rows("searches.csv") if (r["budget"], r["arm"]) == (budget, arm)]
        if not rows or not final.is_file():
            return None
        if network_hash(final) != rows[-1]["network"]:
            raise ValueError(f"{final}: does not hash to its searches.csv row ({rows[-1]['network']}); "
                             f"delete the file and its row to search again")
        return final, float(rows[-1]["search_s"])

    def record_pick(self, budget: str, arm: str, final: Path, seconds: float) -> Path:
        """Keep ``final`` as ``arm``'s pick at ``budget`` (searched in ``seconds``); its path here."""
        kept = self.directory / f"{budget}-{arm}.yaml"
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write(kept, Path(final).read_text())
        self._append_search(budget, arm, seconds, kept)
        return kept

    def record_search_time(self, budget: str, arm: str, seconds: float) -> None:
        """Record ``seconds`` as the search time of ``arm``'s kept pick at ``budget`` (timed again),
        leaving its ``final.yaml`` as it was recorded."""
        kept = self.pick(budget, arm)
        if kept is None:
            raise ValueError(f"the ledger has no {budget} pick of {arm} to record a time for")
        self._append_search(budget, arm, seconds, kept[0])

    def _append_search(self, budget: str, arm: str, seconds: float, kept: Path) -> None:
        self._append("searches.csv", SEARCH_FIELDS, {"budget": budget, "arm": arm, "search_s": f"{seconds:.1f}",
                                                     "network": network_hash(kept)})

    def accuracy(self, budget: str, arm: str, seed: int, epochs: int, final: Path) -> float | None:
        """The recorded test accuracy of this training at this code, or None."""
        key = (budget, arm, str(seed), str(epochs), network_hash(final), self.code)
        rows = [r for r in self._rows("trainings.csv")
                if (r["budget"], r["arm"], r["seed"], r["epochs"], r["network"], r["code"]) == key]
        return float(rows[-1]["test_acc"]) if rows else None

    def record_accuracy(self, budget: str, arm: str, seed: int, epochs: int, final: Path, accuracy: float) -> None:
        self._append("trainings.csv", TRAINING_FIELDS, {
            "budget": budget, "arm": arm, "seed": seed, "epochs": epochs, "network": network_hash(final),
            "code": self.code, "test_acc": f"{accuracy:.4f}"})

