"""Where a ``search`` or ``analyze`` run writes, and how a rerun finds an unfinished one.

A run is identified by a key hashing every setting that changes its result. Its state lives in
``<logs>/.<kind>_state/<key>.json`` (``{"run_dir": ..., "complete": bool, ...}``): running the
same command again after a crash finds the unfinished state and continues in the same run
directory; after a finished run it starts a new ``version_N``. While a run works, it holds a
lock next to its state (:func:`run_lock`): the same command started again meanwhile stops with
one line instead of sharing the state. Run directories are claimed by creating them
(:func:`claim_run_dir`): two runs never get the same one, and a run never writes into a
directory that holds another run's files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, Iterator

import filelock
import lightning.pytorch as pl

from spikenas.errors import SpikenasError


def settings_key(settings: dict[str, Any]) -> str:
    """A 16-hex-digit hash of ``settings`` (JSON with sorted keys; objects by ``str``)."""
    blob = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def logs_root(trainer: pl.Trainer) -> Path:
    """The directory that holds the ``version_N`` run directories of ``trainer``'s logger."""
    logger = trainer.logger
    if logger is not None and getattr(logger, "save_dir", None):
        return Path(logger.save_dir) / (logger.name or "")
    return Path(trainer.default_root_dir) / "lightning_logs"


def claim_run_dir(trainer: pl.Trainer, root: Path) -> Path:
    """A new run directory, created now: the logger's ``log_dir`` if it names one that holds
    no files yet, else the next free ``root/version_N`` (created with ``exist_ok=False``, so a
    concurrent run takes the one after). A ``log_dir`` holding files (a fixed ``version`` used
    before) is a one-line error, never overwritten; so is a directory that cannot be made."""
    logger = trainer.logger
    chosen = Path(logger.log_dir) if logger is not None and getattr(logger, "log_dir", None) else None
    try:
        if chosen is not None and not (chosen.is_dir() and any(not p.name.startswith(".") for p in chosen.iterdir())):
            chosen.mkdir(parents=True, exist_ok=True)
            return chosen
        if chosen is not None and chosen.parent != root:  # a logger's own layout: do not guess another
            raise SpikenasError(f"run directory {chosen} already holds another run's files; set another "
                                "trainer.logger version or move them away")
        root.mkdir(parents=True, exist_ok=True)
        while True:
            versions = [int(p.name.split("_")[1]) for p in root.glob("version_*") if p.name.split("_")[1].isdigit()]
            run_dir = root / f"version_{max(versions, default=-1) + 1}"
            try:
                run_dir.mkdir()
            except FileExistsError:  # another run claimed it first
                continue
            if chosen is not None:
                print(f"spikenas: {chosen} holds another run's files; this run writes to {run_dir}")
            return run_dir
    except OSError as exc:
        raise SpikenasError(f"cannot create a run directory in {root}: {exc.strerror or exc} ({exc.filename})") from None


@contextlib.contextmanager
def run_lock(state_file: Path, what: str, active: bool = True) -> Iterator[None]:
    """Hold the lock of the run whose state is ``state_file`` (``<state>.lock``); another
    process holding it is a one-line error. ``active=False`` (other ranks) holds nothing."""
    if not active:
        yield
        return
    try:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(state_file) + ".lock")
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise SpikenasError(
            f"another {what} with the same settings is running (it holds {state_file}.lock); let it finish, "
            "or stop it and run this command again to resume it"
        ) from None
    except OSError as exc:
        raise SpikenasError(f"cannot write the {what} state in {state_file.parent}: {exc.strerror or exc} ({exc.filename})") from None
    try:
        yield
    finally:
        lock.release()


def state_path(trainer: pl.Trainer, kind: str, key: str) -> Path:
    """``<logs>/.<kind>_state/<key>.json``."""
    return logs_root(trainer) / f".{kind}_state" / f"{key}.json"


def read_state(path: Path) -> dict[str, Any] | None:
    """The state at ``path``; None when missing or unreadable (a state file is only ever
    replaced atomically, so unreadable means foreign or damaged: the run starts afresh)."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("run_dir"), str) else None
