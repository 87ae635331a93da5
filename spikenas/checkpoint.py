"""Checkpoints in and out without running code from a file, and without half-written files.

Reading (:func:`read_checkpoint`) takes a local path or an ``http(s)://`` URL. A URL is
downloaded first, into a private temporary file that is removed afterwards (never into torch
hub's cache), at most :data:`MAX_DOWNLOAD_BYTES`. The file is opened once and its bytes are
unpickled from that one open handle (a symlink switched meanwhile cannot slip another file in)
by ``torch.load(weights_only=True)``: tensors, numbers, strings and containers of them, which
is all a spikenas checkpoint holds. A file that asks for anything else (a ``__reduce__``
payload, a pickled class, in the zip or the legacy format) is refused in one line naming what
it asked for; an empty, truncated or random file, or one without a ``state_dict``, likewise.

:class:`SafeCheckpointIO` is the Lightning ``CheckpointIO`` of every spikenas
:class:`~spikenas.trainer.Trainer`. It loads through :func:`read_checkpoint`, or hands over a
checkpoint the CLI has already read (:meth:`SafeCheckpointIO.preloaded`, so a file is read
once per command). It saves atomically: a temporary file in the checkpoint's directory is
written, flushed and fsynced, then renamed over the old one, so a full disk leaves the previous
checkpoint, never a truncated one.

:class:`LastEveryEpochCheckpoint` is the ``checkpoint`` callback of ``spikenas fit``: Lightning's
``ModelCheckpoint`` (best by ``val/acc``), except that ``last.ckpt`` is written at the end of
every epoch, not only at those whose score improved, so a resume goes on from the epoch the run
stopped in.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import re
import shutil
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Optional

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from spikenas.errors import SpikenasError
from spikenas.files import atomic_output

MAX_DOWNLOAD_BYTES = 4 << 30
"""The largest checkpoint downloaded from a URL (4 GiB; a spikenas checkpoint is megabytes)."""

DOWNLOAD_TIMEOUT_S = 60.0
REMOTE_SCHEMES = ("http", "https")


def is_url(location: str | os.PathLike) -> bool:
    """Whether ``location`` names a file by URL (``scheme://...``) rather than a local path."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", str(location)) is not None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load(handle: IO[bytes], where: str) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of ``handle`` with one-line errors; a dict with a ``state_dict``."""
    try:
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
            UnicodeDecodeError, MemoryError, OverflowError) as exc:
        raise SpikenasError(f"checkpoint {where} is empty, truncated or damaged: {_first_line(exc)}") from None
    if (not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict)
            or not isinstance(checkpoint.get("pytorch-lightning_version"), str)
            or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in checkpoint["state_dict"].items())):
        raise SpikenasError(f"checkpoint {where} holds no state_dict of tensors and Lightning version: it is not a "
                            "Lightning checkpoint of a spikenas model")
    return checkpoint


@contextlib.contextmanager
def _download(url: str) -> Iterator[IO[bytes]]:
    """``url``'s body in a private temporary file (removed on exit), read back from the start."""
    with tempfile.TemporaryFile(prefix="spikenas-ckpt-") as handle:
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:  # noqa: S310 (scheme checked)
                size = 0
                while chunk := response.read(1 << 20):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise SpikenasError(f"checkpoint {url} is larger than {MAX_DOWNLOAD_BYTES >> 30} GiB: refused")
                    handle.write(chunk)
        except urllib.error.HTTPError as exc:
            raise SpikenasError(f"cannot download checkpoint {url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or _first_line(exc)
            raise SpikenasError(f"cannot download checkpoint {url}: {reason}") from None
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
        except OSError as exc:
            raise SpikenasError(f"cannot write checkpoint {path}: {exc.strerror or _first_line(exc)} "
                                "(the previous checkpoint, if any, is intact)") from None

    def remove_checkpoint(self, path: Any) -> None:
        target = Path(path)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def _network_of(hparams: dict[str, Any]) -> dict[str, Any]:
    """What decides the trained network's weights and meaning in a model's hyper-parameters:
    the genotype (by hash), the macro (dropout aside), the neuron (the surrogate aside) and the
    weight quantisation."""
    from spikenas.space.genotype import Genotype

    genotype = hparams.get("genotype")
    macro = {k: v for k, v in dict(hparams.get("macro") or {}).items() if k != "dropout"}
    neuron = {k: v for k, v in dict(hparams.get("neuron") or {}).items() if k not in ("surrogate", "alpha")}
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


class LastEveryEpochCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` (with ``save_last``) is written at the end of every
    epoch. Lightning (2.6.6, the pinned version) writes it only when a best-k checkpoint was
    saved at the same step: after an epoch that does not improve the monitored score,
    ``last.ckpt`` stays at the last improving epoch, and a resume from it trains the epochs
    since once more. Its state is stored under ``ModelCheckpoint``'s key, so a checkpoint
    written by either class resumes with its best score and paths."""

    @property
    def state_key(self) -> str:
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

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
