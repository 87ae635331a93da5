"""CIFAR's python-version batch files read as data only: no file can run code.

A batch file (``data_batch_1``, ``test_batch``, CIFAR-100's ``train`` and ``test``) is a pickle
of a dict holding ``data``, a ``uint8`` array ``[N, 3072]`` (3 planes of 32x32 pixels per image),
and ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100), a list of ``N`` class numbers. A plain
``pickle.load`` would call whatever a file names (a ``__reduce__`` payload runs ``os.system``);
:func:`read_batch` unpickles with :class:`_BatchUnpickler`, which hands out only numpy's array
reconstruction (``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct``,
``numpy.ndarray``, ``numpy.dtype``) and refuses any other global; a file holding an array of
Python objects is refused too. The file is read once: the bytes checked against the MD5 sum are
the bytes unpickled.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any, Optional

import numpy as np

from spikenas.base.errors import SpikenasError

PIXELS = 3 * 32 * 32
# numpy's array reconstruction, under both names numpy has pickled it by (1.x, 2.x), taken from
# numpy itself rather than imported by either name
_RECONSTRUCT = np.zeros(0, np.uint8).__reduce__()[0]
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _Refused(Exception):
    """What a file asked for that a CIFAR batch never needs."""


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, dicts, lists, strings and numbers; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[module, name]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def _object_array(entry: Any) -> Optional[np.ndarray]:
    """An array of Python objects anywhere in ``entry`` (dicts, lists, tuples), or None."""
    stack, seen = [entry], set()
    while stack:
        value = stack.pop()
        if id(value) in seen:  # a pickle may hold a list inside itself
            continue
        seen.add(id(value))
        if isinstance(value, np.ndarray) and value.dtype.hasobject:
            return value
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
    return None


def read_batch(
    path: Path, label_key: str, classes: int, md5: Optional[str], dataset: str
) -> tuple[np.ndarray, list[int]]:
    """``(data uint8 [N, 3072], labels)`` of the batch file at ``path``, labels read from
    ``label_key`` and each in ``0..classes-1``. With ``md5``, the file's MD5 sum must be it.
    Anything else is a one-line :class:`SpikenasError` naming ``dataset`` and the file."""
    where = f"{dataset} file {path}"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpikenasError(f"{where} is unreadable ({exc.strerror or exc})") from None
    if md5 is not None and (actual := hashlib.md5(raw).hexdigest()) != md5:
        raise SpikenasError(
            f"{where} is not the published file (MD5 {actual}, expected {md5}); set data.init_args.download: true "
            "to fetch it again, or verify: false to use a re-packed copy (that skips the checksums only: "
            "batch files are always read as numpy arrays and plain data, never as code)"
        )
    try:
        entry = _BatchUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except _Refused as refused:
        raise SpikenasError(
            f"{where} refused: it asks for {refused}, which is not CIFAR data "
            "(spikenas reads CIFAR batches as numpy arrays and plain data only)"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            UnicodeDecodeError, MemoryError, OverflowError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise SpikenasError(f"{where} is not a CIFAR batch (damaged or another format: {text})") from None
    if (objects := _object_array(entry)) is not None:
        raise SpikenasError(f"{where} refused: it holds an array of dtype {objects.dtype}, which is not CIFAR data "
                            "(spikenas reads CIFAR batches as numpy arrays and plain data only)")
    return _checked(entry, label_key, classes, where)


def _checked(entry: Any, label_key: str, classes: int, where: str) -> tuple[np.ndarray, list[int]]:
    """``entry``'s images and labels when it has the shape of a CIFAR batch, else a one-line error."""
    if not isinstance(entry, dict):
        raise SpikenasError(f"{where} is not a CIFAR batch: it holds a {type(entry).__name__}, not a dict")
    data, labels = entry.get("data"), entry.get(label_key)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == PIXELS):
        found = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise SpikenasError(f"{where} is not a CIFAR batch: its 'data' is {found}, expected uint8 [N, {PIXELS}]")
    if not (isinstance(labels, list) and all(type(v) is int for v in labels)):
        raise SpikenasError(f"{where} is not a CIFAR batch: its '{label_key}' is not a list of integers")
    if len(labels) != len(data):
        raise SpikenasError(f"{where} is not a CIFAR batch: {len(data):,} images but {len(labels):,} labels")
    outside = [v for v in labels if not 0 <= v < classes]
    if outside:
        raise SpikenasError(f"{where} is not a CIFAR batch: a label {outside[0]} outside 0..{classes - 1}")
    return data, labels
