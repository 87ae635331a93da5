"""Checks of IDX files (the MNIST family's format), so that a damaged copy is never used.

An IDX file is a 4-byte magic number (two zero bytes, the element type, ``0x08`` for unsigned
bytes, and the number of dimensions), one big-endian ``uint32`` size per dimension, then the
elements. :func:`idx_problem` says what is wrong with a file (None when nothing is), reading
only its header, its size and, for labels, its elements; :func:`decompress_checked` turns a
``.gz`` copy into a checked file without ever leaving a partial or damaged one behind;
:func:`read_idx` reads a checked file's elements (raw bytes: nothing in a file is ever run).
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import torch

from spikenas.base.errors import SpikenasError
from spikenas.base.files import atomic_output

UNSIGNED_BYTE = 0x08


def idx_problem(path: Path, item_shape: tuple[int, ...], classes: int | None = None) -> str | None:
    """What is wrong with the IDX file at ``path`` holding ``N`` items of ``item_shape`` unsigned
    bytes (``()`` for labels, ``(28, 28)`` for images), or None. With ``classes``, every element
    must be a label below it."""
    ndim = 1 + len(item_shape)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            header = handle.read(4 + 4 * ndim)
            if len(header) < 4 + 4 * ndim:
                return f"{size} bytes, shorter than an IDX header"
            zero, kind, dims = struct.unpack(">HBB", header[:4])
            if zero != 0 or kind != UNSIGNED_BYTE or dims != ndim:
                return f"not an IDX file of {ndim}-dimensional unsigned bytes (magic {header[:4].hex()})"
            shape = struct.unpack(f">{ndim}I", header[4:])
            if tuple(shape[1:]) != tuple(item_shape):
                return f"items of shape {tuple(shape[1:])}, expected {tuple(item_shape)}"
            expected = len(header) + math.prod(shape)
            if size != expected:
                return f"{size:,} bytes where its header announces {expected:,} ({shape[0]:,} items): truncated or padded"
            if classes is not None:
                labels = handle.read()
                if labels and max(labels) >= classes:
                    return f"a label {max(labels)} outside 0..{classes - 1}"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    return None


def item_count(path: Path) -> int:
    """``N``, the first dimension of a checked IDX file."""
    with open(path, "rb") as handle:
        return struct.unpack(">I", handle.read(8)[4:])[0]


def read_idx(path: Path) -> torch.Tensor:
    """The elements of the checked IDX file at ``path`` (see :func:`idx_problem`): a uint8
    tensor of the shape its header gives."""
    raw = path.read_bytes()
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8).view(*shape)


def decompress_checked(source: Path, target: Path, item_shape: tuple[int, ...], classes: int | None = None) -> str | None:
    """Decompress ``source`` (``.gz``) to ``target`` if the result is a sound IDX file (see
    :func:`idx_problem`); otherwise leave ``target`` alone and return what is wrong. The data go
    to a temporary file renamed into place (:func:`~spikenas.base.files.atomic_output`), so no
    reader ever sees a partial file, and the temporary file is removed whatever happens."""
    try:
        with atomic_output(target) as tmp:
            with open(tmp, "wb") as out, gzip.open(source, "rb") as src:
                while True:
                    try:
                        chunk = src.read(1 << 20)
                    except (OSError, EOFError, zlib.error) as exc:  # the source's fault (BadGzipFile is an OSError)
                        raise _Unsound(f"not a readable gzip file ({type(exc).__name__}: {' '.join(str(exc).split())})") from None
                    if not chunk:
                        break
                    out.write(chunk)  # an OSError here is the target's disk, not the source
            problem = idx_problem(tmp, item_shape, classes)
            if problem is not None:
                raise _Unsound(problem)
    except _Unsound as unsound:
        return str(unsound)
    except OSError as exc:
        raise SpikenasError(f"cannot write {target}: {exc.strerror or exc} (the data root must be writable, with room "
                            "for the decompressed files)") from None
    return None


class _Unsound(Exception):
    """What is wrong with a decompressed file (it is not kept)."""
