"""Checkpoints in and out without running code from a file, and without half-written files.

Reading (:func:`read_checkpoint`) takes a local path or an ``http(s)://`` URL. A URL is
downloaded first, into a private temporary file that is removed afterwards (never into torch
hub's cache), at most :data:`MAX_DOWNLOAD_BYTES` within :data:`DOWNLOAD_TOTAL_S`. The file is
opened once and its bytes are unpickled from that one open handle (a symlink switched meanwhile
cannot slip another file in) by ``torch.load(weights_only=True)``: tensors, numbers, strings and
containers of them, which is all a spikenas checkpoint holds. A file that asks for anything else (a ``__reduce__``
payload, a pickled class, in the zip or the legacy format) is refused in one line naming what
it asked for; an empty, truncated or random file, or one without a ``state_dict``, likewise.

:class:`SafeCheckpointIO` is the Lightning ``CheckpointIO`` of every spikenas
:class:`~spikenas.app.trainer.Trainer`. It loads through :func:`read_checkpoint`, or hands over a
checkpoint the CLI has already read (:meth:`SafeCheckpointIO.preloaded`, so a file is read
once per command). It saves atomically: a temporary file in the checkpoint's directory is
written, flushed and fsynced, then renamed over the old one, so a full disk leaves the previous
checkpoint, never a truncated one. It deletes only regular files in directories it has saved
into (:meth:`SafeCheckpointIO.remove_checkpoint`).

:class:`LastEveryEpochCheckpoint` is the ``checkpoint`` callback of ``spikenas fit``: Lightning's
``ModelCheckpoint`` (best by ``val/acc``), except that ``last.ckpt`` is written at the end of
every epoch, not only at those whose score improved, so a resume goes on from the epoch the run
stopped in; the paths of a resumed checkpoint's callback state are confined to its directory.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import re
import stat
import struct
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Optional

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from spikenas.base.errors import SpikenasError
from spikenas.base.files import atomic_output

MAX_DOWNLOAD_BYTES = 4 << 30
"""The largest checkpoint downloaded from a URL (4 GiB; a spikenas checkpoint is megabytes)."""

DOWNLOAD_TIMEOUT_S = 60.0
"""The longest wait for any one read of a download (connecting, the headers, each chunk)."""

DOWNLOAD_TOTAL_S = 900.0
"""The longest a whole download may take, however steadily its bytes trickle in (15 minutes)."""

REMOTE_SCHEMES = ("http", "https")


def is_url(location: str | os.PathLike) -> bool:
    """Whether ``location`` names a file by URL (``scheme://...``) rather than a local path."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", str(location)) is not None


class CheckpointWarning(UserWarning):
    """Something in a checkpoint, or a removal asked of :class:`SafeCheckpointIO`, is left alone
    (its message is one line naming the file; the CLI prints it so)."""


def _one_line(reason: object) -> str:
    """``reason`` (a server's or urllib's words, possibly several lines) as one line."""
    return " ".join(str(reason).split())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load(handle: IO[bytes], where: str) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of ``handle`` with one-line errors; a dict with a ``state_dict``."""
    try:
        with warnings.catch_warnings():  # torch's warnings on a refused file would precede the one line
            warnings.simplefilter("ignore")
            checkpoint = torch.load(handle, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        asked = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if asked:
            raise SpikenasError(
                f"checkpoint {where} refused: it asks to run {asked.group(1)}, which is not tensors or plain data "
                "(spikenas loads checkpoints with torch.load(weights_only=True))"
            ) from None
        raise SpikenasError(f"checkpoint {where} is not a PyTorch checkpoint (damaged or another format)") from None
    except (EOFError, RuntimeError, OSError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            UnicodeDecodeError, MemoryError, OverflowError, struct.error) as exc:
        raise SpikenasError(f"checkpoint {where} is empty, truncated or damaged: {_first_line(exc)}") from None
    if (not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict)
            or not isinstance(checkpoint.get("pytorch-lightning_version"), str)
            or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in checkpoint["state_dict"].items())):
        raise SpikenasError(f"checkpoint {where} holds no state_dict of tensors and Lightning version: it is not a "
                            "Lightning checkpoint of a spikenas model")
    return checkpoint


def _transfer(url: str, handle: IO[bytes], stop: threading.Event) -> None:
    """Copy ``url``'s body into ``handle`` until its end, a read fails or ``stop`` is set; at most
    :data:`MAX_DOWNLOAD_BYTES`, each read at most :data:`DOWNLOAD_TIMEOUT_S`."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:  # noqa: S310 (scheme checked)
        size = 0
        while not stop.is_set() and (chunk := response.read1(1 << 20)):
            size += len(chunk)
            if size > MAX_DOWNLOAD_BYTES:
                raise SpikenasError(f"checkpoint {url} is larger than {MAX_DOWNLOAD_BYTES:,} bytes: refused")
            handle.write(chunk)


@contextlib.contextmanager
def _download(url: str) -> Iterator[IO[bytes]]:
    """``url``'s body in a private temporary file (removed on exit), read back from the start.
    The transfer runs in a daemon thread given :data:`DOWNLOAD_TOTAL_S` in all: a server that
    trickles its headers or body is refused in one line when that time is up (the thread, told to
    stop, ends at its next read, at most :data:`DOWNLOAD_TIMEOUT_S` later)."""
    with tempfile.TemporaryFile(prefix="spikenas-ckpt-") as handle:
        stop, failure = threading.Event(), []

        def transfer() -> None:
            try:
                _transfer(url, handle, stop)
            except Exception as exc:  # noqa: BLE001 (reported by the waiting thread, in one line)
                failure.append(exc)

        worker = threading.Thread(target=transfer, name="spikenas-download", daemon=True)
        worker.start()
        worker.join(DOWNLOAD_TOTAL_S)
        if worker.is_alive():
            stop.set()
            raise SpikenasError(f"cannot download checkpoint {url}: not complete after {DOWNLOAD_TOTAL_S:g} s")
        if failure:
            exc = failure[0]
            if isinstance(exc, SpikenasError):
                raise exc
            if isinstance(exc, urllib.error.HTTPError):
                raise SpikenasError(f"cannot download checkpoint {url}: HTTP {exc.code} {_one_line(exc.reason)}") from None
            reason = getattr(exc, "reason", None) or _first_line(exc)
            raise SpikenasError(f"cannot download checkpoint {url}: {_one_line(reason)}") from None
        handle.seek(0)
        yield handle


def read_checkpoint(location: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint at ``location`` (a local path or an http(s) URL), read once and unpickled
    with ``weights_only=True``; any other case is a one-line :class:`SpikenasError`."""
    text = str(location)
    if is_url(text):
        scheme = urllib.parse.urlsplit(text).scheme.lower()
        if scheme not in REMOTE_SCHEMES:
            raise SpikenasError(f"checkpoint {text}: {scheme}:// is not supported (give a local file or an http(s) URL)")
        with _download(text) as handle:
            return _load(handle, text)
    if not text:
        raise SpikenasError("checkpoint path is empty")
    try:
        handle = open(text, "rb")
    except FileNotFoundError:
        raise SpikenasError(f"checkpoint {text!r} not found") from None
    except IsADirectoryError:
        raise SpikenasError(f"checkpoint {text!r} is a directory, not a checkpoint file") from None
    except OSError as exc:
        raise SpikenasError(f"cannot read checkpoint {text!r}: {exc.strerror or _first_line(exc)}") from None
    with handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise SpikenasError(f"checkpoint {text!r} is not a regular file")
        return _load(handle, repr(text))


def save_checkpoint_file(checkpoint: dict[str, Any], path: Path) -> None:
    """``torch.save`` of ``checkpoint`` to ``path`` atomically and durably: a temporary file in
    ``path``'s directory is written, fsynced and renamed over ``path``, then the directory is
    fsynced. On any error (a full disk) ``path`` keeps its old content and no temporary file stays."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
    with contextlib.suppress(OSError):  # not every file system lets a directory be fsynced
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class SafeCheckpointIO(CheckpointIO):
    """Lightning's checkpoint reader and writer for spikenas (see the module's docstring)."""

    def __init__(self) -> None:
        self._preloaded: dict[str, dict[str, Any]] = {}
        self._written: set[tuple[int, int]] = set()  # (device, inode) of each directory saved into

    def preloaded(self, location: str, checkpoint: dict[str, Any]) -> None:
        """Hand ``checkpoint`` (already read from ``location``) to the next load of ``location``."""
        self._preloaded[str(location)] = checkpoint

    def load_checkpoint(self, path: Any, map_location: Optional[Callable] = None,
                        weights_only: Optional[bool] = None) -> dict[str, Any]:
        if weights_only is False:
            raise SpikenasError("spikenas never loads a checkpoint with weights_only=False")
        checkpoint = self._preloaded.pop(str(path), None)
        return checkpoint if checkpoint is not None else read_checkpoint(path)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None:
            raise TypeError("spikenas's SafeCheckpointIO takes no storage_options")
        if is_url(path):
            raise SpikenasError(f"checkpoints are written to local directories, not to {path}")
        try:
            save_checkpoint_file(checkpoint, Path(path))
            written = os.stat(Path(path).parent)
        except OSError as exc:
            raise SpikenasError(f"cannot write checkpoint {path}: {exc.strerror or _first_line(exc)} "
                                "(the previous checkpoint, if any, is intact)") from None
        self._written.add((written.st_dev, written.st_ino))

    def remove_checkpoint(self, path: Any) -> None:
        """Delete ``path`` only if it is a regular file (not a directory, not a symlink) directly
        in a directory this object has saved a checkpoint into: a path from a checkpoint's
        callback state (``..``, a symlinked directory) can never delete anything else. Anything
        else is left alone with a one-line :class:`CheckpointWarning`; a missing file is no error.
        The directory is opened once and the file checked and unlinked relative to it, so
        neither can be swapped in between."""
        target = Path(path)
        try:
            directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        except (OSError, ValueError):  # no such directory, or an embedded NUL
            directory = None
        try:
            where = None if directory is None else os.fstat(directory)
            if where is None or (where.st_dev, where.st_ino) not in self._written:
                warnings.warn(f"spikenas: left {str(path)!r} in place: it is not in a directory this run writes "
                              "checkpoints to", CheckpointWarning, stacklevel=2)
                return
            try:
                mode = os.lstat(target.name, dir_fd=directory).st_mode
            except FileNotFoundError:
                return
            if not stat.S_ISREG(mode):
                warnings.warn(f"spikenas: left {str(path)!r} in place: it is not a regular checkpoint file",
                              CheckpointWarning, stacklevel=2)
                return
            os.unlink(target.name, dir_fd=directory)
        finally:
            if directory is not None:
                os.close(directory)


def _network_of(hparams: dict[str, Any]) -> dict[str, Any]:
    """What decides the trained network's weights and meaning in a model's hyper-parameters:
    the genotype (by hash), the macro (dropout aside), the neuron (the surrogate aside; a
    checkpoint from before neuron models has spikenas's ``lif``) and the weight quantisation."""
    from spikenas.space.genotype import Genotype

    genotype = hparams.get("genotype")
    macro = {k: v for k, v in dict(hparams.get("macro") or {}).items() if k != "dropout"}
    neuron = {"model": "lif"} | {k: v for k, v in dict(hparams.get("neuron") or {}).items() if k not in ("surrogate", "alpha")}
    return {
        "genotype": None if genotype is None else Genotype.from_dict(genotype).hash,
        "macro": {k: list(v) if isinstance(v, tuple) else v for k, v in macro.items()},
        "neuron": neuron,
        "quantization": dict(hparams.get("quantization") or {}),
    }


def _describe(network: dict[str, Any]) -> str:
    macro, bits = network["macro"], network["quantization"].get("weight_bits") or 32
    return (f"genotype {network['genotype']}, channels={macro.get('channels')}, head_hidden={macro.get('head_hidden')}, "
            f"head_pool={macro.get('head_pool')}, {bits}-bit weights")


def check_holds_network(checkpoint: dict[str, Any], hparams: dict[str, Any], state_dict: dict[str, torch.Tensor],
                        where: str = "the checkpoint") -> None:
    """A one-line error unless ``checkpoint`` holds the network that ``hparams`` (the config's
    model) describes: the same genotype, macro, neuron and quantisation when the checkpoint
    records them, and always the same parameter names and shapes as ``state_dict``."""
    saved = checkpoint.get("hyper_parameters")
    if isinstance(saved, dict) and saved.get("genotype") is not None:
        try:
            theirs = _network_of(saved)
        except (SpikenasError, TypeError, ValueError, AttributeError):
            raise SpikenasError(f"{where} records a network spikenas cannot read (hyper_parameters damaged)") from None
        ours = _network_of(hparams)
        if theirs != ours:
            differ = ", ".join(k for k in ours if ours[k] != theirs.get(k))
            raise SpikenasError(f"{where} holds another network than the config ({differ} differ): checkpoint "
                                f"{_describe(theirs)}; config {_describe(ours)}")
    weights = checkpoint["state_dict"]
    for name, tensor in state_dict.items():
        got = weights.get(name)
        if not isinstance(got, torch.Tensor) or got.shape != tensor.shape:
            found = "missing" if got is None else f"shape {list(got.shape)}" if isinstance(got, torch.Tensor) else type(got).__name__
            raise SpikenasError(f"{where} does not hold the config's network: {name} is {found}, the config's network "
                                f"has shape {list(tensor.shape)}")
    extra = sorted(set(weights) - set(state_dict))
    if extra:
        raise SpikenasError(f"{where} does not hold the config's network: it has {extra[0]} (and {len(extra) - 1} more) "
                            "that the config's network lacks")


def _resolved(path: Any) -> str:
    """``path`` with ``..`` collapsed and symlinks followed; ``""`` for anything but a non-empty
    string that names a possible path."""
    try:
        return os.path.realpath(path) if isinstance(path, str) and path else ""
    except ValueError:  # an embedded NUL
        return ""


class LastEveryEpochCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` (with ``save_last``) is written at the end of every
    epoch. Lightning (2.6.6, the pinned version) writes it only when a best-k checkpoint was
    saved at the same step: after an epoch that does not improve the monitored score,
    ``last.ckpt`` stays at the last improving epoch, and a resume from it trains the epochs
    since once more. Its state is stored under ``ModelCheckpoint``'s key, so a checkpoint
    written by either class resumes with its best score and paths, each confined to this
    callback's directory (:meth:`load_state_dict`)."""

    @property
    def state_key(self) -> str:
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """``ModelCheckpoint``'s restore, confined: each path of ``state_dict`` (``best_model_path``,
        ``kth_best_model_path``, ``last_model_path``, the ``best_k_models`` keys) is kept only if,
        resolved (``..`` collapsed, symlinks followed), it is a regular file directly in this
        callback's ``dirpath``, and then as ``<dirpath>/<name>``, the way this callback names its
        own files. Any other is dropped with its score, one :class:`CheckpointWarning` line each,
        so a later removal of a superseded checkpoint can only remove this run's files. A state
        whose ``dirpath`` is another directory restores nothing, in one such line (where Lightning
        would keep its ``best_model_path``)."""
        here = _resolved(self.dirpath)
        recorded = state_dict.get("dirpath", self.dirpath)
        if _resolved(recorded) != here:
            warnings.warn(f"spikenas: the resumed checkpoint's best and last paths are left out: they were recorded "
                          f"for {recorded!r}, this run writes to {self.dirpath}", CheckpointWarning, stacklevel=2)
            return
        dropped: list[str] = []

        def confined(path: Any) -> str:
            """``path`` as ``<dirpath>/<name>``, or ``""`` (recorded in ``dropped``) if not confined."""
            real = _resolved(path)
            if real and os.path.dirname(real) == here and os.path.isfile(real):
                return os.path.join(self.dirpath, os.path.basename(real))
            if path and str(path) not in dropped:
                dropped.append(str(path))
            return ""

        best_k = state_dict.get("best_k_models")
        state = {**state_dict, "dirpath": self.dirpath, "best_model_score": state_dict.get("best_model_score"),
                 "best_k_models": {inside: score for path, score in (best_k if isinstance(best_k, dict) else {}).items()
                                   if (inside := confined(path))}}
        for key, score_key, unset in (("best_model_path", "best_model_score", None),
                                      ("kth_best_model_path", "kth_value", self.kth_value),
                                      ("last_model_path", None, None)):
            state[key] = confined(state_dict.get(key))
            if not state[key] and score_key is not None:
                state[score_key] = unset
        for path in dropped:
            warnings.warn(f"spikenas: left {path!r} out of the resumed checkpoint state: it is not a checkpoint file "
                          f"in {self.dirpath}", CheckpointWarning, stacklevel=2)
        super().load_state_dict(state)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def _save_last_if_missed(self, trainer: pl.Trainer) -> None:
        """``last.ckpt`` now, unless Lightning has saved at this step (or must not save now)."""
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
