"""Tiny fake copies of real datasets, written in the real on-disk formats, for offline tests."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

FMNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


def write_cifar(root: Path, classes: int = 10, per_batch: int = 20, test: int = 20) -> Path:
    """A CIFAR-10 (``classes=10``) or CIFAR-100 (``classes=100``) copy in torchvision's layout
    (batches pickled as Python 3 re-packs them, protocol 4); its MD5 sums differ from the real
    files (load with ``verify: false``)."""
    rng = np.random.default_rng(0)

    def batch(n: int) -> dict:
        data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, classes, size=n)]
        key = "labels" if classes == 10 else "fine_labels"
        return {"data": data, key: labels}

    def dump(path: Path, obj: dict) -> None:
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=4)  # Python 3.14's default 5 pickles arrays otherwise

    if classes == 10:
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for i in range(1, 6):
            dump(folder / f"data_batch_{i}", batch(per_batch))
        dump(folder / "test_batch", batch(test))
        dump(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    else:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True)
        dump(folder / "train", batch(5 * per_batch))
        dump(folder / "test", batch(test))
        dump(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    return root


def py2_cifar_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """``{'data': data, 'labels': labels}`` (``data`` uint8 ``[N, 3072]``, labels below 256) pickled
    as the published CIFAR files are: Python 2's cPickle at protocol 2 (byte strings, numpy's
    ``numpy.core.multiarray._reconstruct``), written opcode by opcode."""

    def text(value: bytes) -> bytes:  # SHORT_BINSTRING
        return b"U" + bytes([len(value)]) + value

    raw = data.tobytes()
    dtype = (b"cnumpy\ndtype\n" + text(b"u1") + b"K\x00K\x01\x87R(K\x03" + text(b"|")
             + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + text(b"b") + b"\x87R"
             + b"(K\x01M" + struct.pack("<H", data.shape[0]) + b"M" + struct.pack("<H", data.shape[1]) + b"\x86"
             + dtype + b"\x89T" + struct.pack("<I", len(raw)) + raw + b"tb")
    label_list = b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return b"\x80\x02}(" + text(b"data") + array + text(b"labels") + label_list + b"u."


def idx_bytes(items: np.ndarray) -> bytes:
    """``items`` (unsigned bytes, ``[N, ...]``) in the IDX format."""
    header = bytes([0, 0, 0x08, items.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in items.shape)
    return header + items.astype(np.uint8).tobytes()


def write_fashion_mnist_gz(folder: Path, train: int = 30, test: int = 10) -> dict[str, bytes]:
    """A small Fashion-MNIST in Debian's layout (the four ``.gz`` files); returns the
    uncompressed contents by file name, for tests that damage them."""
    import gzip

    rng = np.random.default_rng(0)
    contents = {}
    for split, n in (("train", train), ("t10k", test)):
        contents[f"{split}-images-idx3-ubyte"] = idx_bytes(rng.integers(0, 256, size=(n, 28, 28)))
        contents[f"{split}-labels-idx1-ubyte"] = idx_bytes(rng.integers(0, 10, size=(n,)))
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(data))
    return contents
