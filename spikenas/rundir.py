"""Where a ``search`` or ``analyze`` run writes, and how a rerun finds an unfinished one.

A run is identified by a key hashing every setting that changes its result. Its state lives in
``<logs>/.<kind>_state/<key>.json`` (``{"run_dir": ..., "complete": bool, ...}``): running the
same command again after a crash finds the unfinished state and continues in the same run
directory; after a finished run it starts a new ``version_N``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl


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


def new_run_dir(trainer: pl.Trainer, root: Path) -> Path:
    """The logger's ``log_dir``, else the next free ``root/version_N``."""
    logger = trainer.logger
    if logger is not None and getattr(logger, "log_dir", None):
        return Path(logger.log_dir)
    versions = [int(p.name.split("_")[1]) for p in root.glob("version_*") if p.name.split("_")[1].isdigit()]
    return root / f"version_{max(versions, default=-1) + 1}"


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
