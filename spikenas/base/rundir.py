"""Where a ``search`` or ``analyze`` run writes, and how a rerun finds an unfinished one.

A run is identified by a key hashing every setting that changes its result. Its state lives in
``<logs>/.<kind>_state/<key>.json`` (``{"run_dir": ..., "complete": bool, ...}``): running the
same command again after a crash finds the unfinished state and continues in the same run
directory; after a finished run it starts a new ``version_N``. While a run works, it holds a
lock next to its state (:func:`run_lock`): the same command started again meanwhile stops with
one line instead of sharing the state. Run directories are claimed by creating them
(:func:`claim_run_dir`): two runs never get the same one, and a run never writes into a
directory that holds another run's files. The claim records who owns the directory (a state's
``<kind>:<key>``), so a state resumes only into the directory it claimed.

States are sealed (:func:`seal`): an HMAC-SHA256 of their content under a per-user secret key
(:func:`state_key_file`, created ``0600`` on first use). A state edited, forged or copied from
another user's logs without that key is refused as damaged: it can neither redirect a run's
outputs nor change a result. Whoever can read the key file (the user, root) can forge one; the
seal does not protect against them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, Iterator

import filelock
import lightning.pytorch as pl
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from spikenas.base.errors import SpikenasError
from spikenas.base.files import atomic_write


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


def _claim(directory: Path, owner: str) -> bool:
    """Whether this process now owns ``directory``: it held no files and
    nobody had claimed it. The claim is the exclusive creation of
    ``<parent>/.claims/<name>`` (JSON: the claiming process's id and ``owner``), so of two runs that pick
    the same directory at once exactly one wins, whoever made the directory; the run
    directory itself holds only the run's results and appears with the first of them, so a run
    killed before it wrote anything leaves no empty directory, and a lost claim creates nothing."""
    def holds_files() -> bool:
        return directory.is_dir() and any(not p.name.startswith(".") for p in directory.iterdir())

    if holds_files():
        return False
    claims = directory.parent / ".claims"
    claims.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(claims / directory.name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps({"pid": os.getpid(), "owner": owner}) + "\n")
    return not holds_files()  # the directory itself is made by the first result written into it


def claimed_by(directory: Path) -> str | None:
    """The owner recorded in ``directory``'s claim (see :func:`_claim`); None when it has no
    claim that this code wrote."""
    try:
        claim = json.loads((Path(directory).parent / ".claims" / Path(directory).name).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    owner = claim.get("owner") if isinstance(claim, dict) else None
    return owner if isinstance(owner, str) else None


def claim_run_dir(trainer: pl.Trainer, root: Path, owner: str = "") -> Path:
    """A run directory this run owns (see :func:`_claim`; ``owner`` is recorded in the claim):
    the logger's ``log_dir`` if nobody
    has claimed it and it holds no files yet, else the next free ``root/version_N``. A taken
    ``log_dir`` outside ``root`` (a logger's own layout) is a one-line error, never shared or
    overwritten; so is a claim that cannot be written. The directory appears with the run's
    first result (a run killed before that leaves none behind)."""
    logger = trainer.logger
    chosen = Path(logger.log_dir) if logger is not None and getattr(logger, "log_dir", None) else None
    try:
        if chosen is not None and _claim(chosen, owner):
            return chosen
        if chosen is not None and chosen.parent != root:  # a logger's own layout: do not guess another
            raise SpikenasError(f"run directory {chosen} already holds another run; set another "
                                "trainer.logger version or move it away")
        root.mkdir(parents=True, exist_ok=True)
        while True:
            taken = [*root.glob("version_*"), *(root / ".claims").glob("version_*")]
            versions = [int(p.name.split("_")[1]) for p in taken if p.name.split("_")[1].isdigit()]
            run_dir = root / f"version_{max(versions, default=-1) + 1}"
            if not _claim(run_dir, owner):  # another run claimed it first
                continue
            if chosen is not None:
                print(f"spikenas: {chosen} holds another run; this run writes to {run_dir}")
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


class DamagedState(ValueError):
    """A state file that is not one this code wrote, unchanged, or that points outside its logs."""


STATE_KEY_ENV = "SPIKENAS_STATE_KEY_FILE"


def state_key_file() -> Path:
    """Where the per-user key that seals resume states lives: ``$SPIKENAS_STATE_KEY_FILE``, else
    ``$XDG_STATE_HOME/spikenas/state.key``, else ``~/.local/state/spikenas/state.key``."""
    if os.environ.get(STATE_KEY_ENV):
        return Path(os.environ[STATE_KEY_ENV])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "spikenas" / "state.key"


def _state_key() -> bytes:
    """The 32-byte sealing key, made on first use: written to a private temporary file and
    linked into place, so concurrent first uses agree on one key and none sees half of it."""
    path = state_key_file()
    for _ in range(50):
        try:
            key = path.read_bytes()
            if len(key) == 32:
                return key
            raise SpikenasError(f"the state key {path} is not one spikenas made ({len(key)} bytes, not 32): remove it "
                                f"(unfinished runs then start afresh) or set {STATE_KEY_ENV}")
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise SpikenasError(f"cannot read the state key {path}: {exc.strerror or exc}; set {STATE_KEY_ENV} to a "
                                "file of your own") from None
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
            try:
                os.link(tmp, path)  # fails if another process linked its key first: then read that one
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise SpikenasError(f"cannot create the state key {path}: {exc.strerror or exc}; set {STATE_KEY_ENV} to a "
                                "writable place") from None
        time.sleep(0.01)
    raise SpikenasError(f"cannot create the state key {path}")


def seal(content: Any) -> str:
    """The HMAC-SHA256 (hex) of ``content`` (JSON with sorted keys) under the user's state key."""
    blob = json.dumps(content, sort_keys=True).encode()
    return hmac.new(_state_key(), blob, hashlib.sha256).hexdigest()


def is_sealed(content: Any, claimed: Any) -> bool:
    """Whether ``claimed`` is :func:`seal` of ``content`` (compared in constant time)."""
    return isinstance(claimed, str) and hmac.compare_digest(seal(content), claimed)


def check_run_dir(run_dir: Any, root: Path, owner: str) -> Path:
    """``run_dir`` (from a state file) if it names a directory of ``root`` (the logs the state
    belongs to) that ``owner`` claimed: a state never redirects a run's outputs elsewhere, not
    into another run's directory nor into a hidden one."""
    if not isinstance(run_dir, str) or not run_dir:
        raise DamagedState(f"its run_dir is {run_dir!r}, not a directory name")
    path = Path(run_dir)
    if path.resolve().parent != root.resolve() or path.name.startswith("."):
        raise DamagedState(f"its run_dir {run_dir} is not a run directory of {root}")
    if claimed_by(path) != owner:
        raise DamagedState(f"its run_dir {run_dir} belongs to another run")
    return path


def read_state(path: Path, root: Path, owner: str) -> dict[str, Any] | None:
    """The state at ``path`` (None when there is none): a sealed JSON mapping (:func:`write_state`)
    whose ``run_dir`` is the run directory of ``root`` that ``owner`` claimed; a
    :class:`DamagedState` otherwise (written by hand, forged or damaged on disk: a state file is
    only ever replaced atomically)."""
    if not (path.exists() or path.is_symlink()):
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise DamagedState(getattr(exc, "strerror", None) or type(exc).__name__) from None
    if not isinstance(state, dict) or not isinstance(state.get("complete"), bool):
        raise DamagedState("not a state of this run")
    content = {k: v for k, v in state.items() if k != "seal"}
    if not is_sealed(content, state.get("seal")):
        raise DamagedState("its seal does not match its content (edited, or written under another user's key)")
    check_run_dir(state.get("run_dir"), root, owner)
    return state


def write_state(path: Path, state: dict[str, Any]) -> None:
    """``state`` sealed (:func:`seal`) and written atomically to ``path``."""
    atomic_write(path, json.dumps({**state, "seal": seal(state)}))


def set_aside(path: Path, command: str, reason: Exception) -> None:
    """Move a damaged state out of the way, saying so in one line."""
    aside, n = path.with_name(path.name + ".damaged"), 0
    while aside.exists() or aside.is_symlink():
        n += 1
        aside = path.with_name(f"{path.name}.damaged{n}")
    path.replace(aside)
    print(f"spikenas {command}: the resume state {path} was unreadable ({reason}); moved it to {aside} and started afresh")


def claim_logger_run_dir(trainer: pl.Trainer, command: str) -> None:
    """Claim the run directory of ``trainer``'s logger for ``command`` (``fit``, ``validate``,
    ``test``, ``predict``) before anything is written: a logger asking for a version another
    run holds (a fixed ``--trainer.logger.init_args.version``, or one a search claimed and has
    not written yet) is given the next free ``version_N``, saying so, or the run stops with one
    line (a taken directory outside the logger's versions). Only rank 0 claims (Lightning
    broadcasts rank 0's directory to the others). TensorBoard and CSV loggers only, whose
    ``log_dir`` is a version folder; with another logger, or none, Lightning's guard against an
    existing ``config.yaml`` (:class:`SaveConfigInClaimedRun`) protects the directory."""
    logger = trainer.logger
    if not isinstance(logger, (TensorBoardLogger, CSVLogger)) or rank_zero_only.rank != 0:
        return
    name = claim_run_dir(trainer, logs_root(trainer), f"{command}:{os.getpid()}").name
    if Path(logger.log_dir).name != name:
        logger._version = name  # a str version is the folder's name as it is (both loggers)


class SaveConfigInClaimedRun(SaveConfigCallback):
    """LightningCLI's config saver with its guard on: a ``config.yaml`` already in the run's
    directory (another run's) stops this run with one line instead of being overwritten."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        try:
            super().setup(trainer, pl_module, stage)
        except RuntimeError as exc:
            if "NOT exist" not in str(exc):
                raise
            where = Path(trainer.log_dir or ".") / self.config_filename
            raise SpikenasError(f"{where} exists: another run wrote into {where.parent}; give this run another "
                                "--trainer.default_root_dir or logger version") from None
