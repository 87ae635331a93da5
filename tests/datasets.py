"""Tiny fake copies of real datasets, written in the real on-disk formats, for offline tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

FMNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


def write_cifar(root: Path, classes: int = 10, per_batch: int = 20, test: int = 20) -> Path:
    """A CIFAR-10 (``classes=10``) or CIFAR-100 (``classes=100``) copy in torchvision's layout
    (pickled batches); its MD5 sums differ from the real files (load with ``verify: false``)."""
    rng = np.random.default_rng(0)

    def batch(n: int) -> dict:
        data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, classes, size=n)]
        key = "labels" if classes == 10 else "fine_labels"
        return {"data": data, key: labels}

    def dump(path: Path, obj: dict) -> None:
        with open(path, "wb") as f:
            pickle.dump(obj, f)

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
