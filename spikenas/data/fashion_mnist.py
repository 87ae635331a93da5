"""Fashion-MNIST (Xiao et al., 2017): 60,000 + 10,000 greyscale 28x28 images, 10 classes.

Looked for, in order: the decompressed files in ``<root>/FashionMNIST/raw/`` (torchvision's
layout); Debian's copy (``apt-get install dataset-fashion-mnist``, in
``/usr/share/datasets/fashion-mnist/``), decompressed into that layout on first use (torchvision
rejects Debian's recompressed ``.gz`` files: their checksums differ); torchvision's download when
``download`` is true.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from torch.utils.data import Dataset

from spikenas.data.base import SpikenasDataModule, TensorImages
from spikenas.errors import SpikenasError

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class FashionMNIST(SpikenasDataModule):
    """Fashion-MNIST, normalised; training images optionally augmented.

    Args:
        root: see :class:`SpikenasDataModule`; files go to ``<root>/FashionMNIST/raw/``.
        augment: random shift of up to ``AUGMENT_PADDING`` pixels (zero fill, as
            ``RandomCrop(28, padding=2)``) and left-right flip of the training images (the
            validation and test images are never augmented).
        download: download through torchvision when the files are found nowhere.
        system_dir: where a system package keeps the ``.gz`` files (Debian's by default).
        batch_size, num_workers, val_split, split_seed: see :class:`SpikenasDataModule`.
    """

    num_classes = 10
    input_shape = (1, 28, 28)
    mean = (0.2860,)
    std = (0.3530,)
    AUGMENT_PADDING = 2

    def __init__(
        self,
        root: Optional[str] = None,
        augment: bool = False,
        download: bool = False,
        system_dir: Optional[str] = DEBIAN_DIR,
        batch_size: int = 64,
        num_workers: int = 0,
        val_split: float = 0.1,
        split_seed: int = 0,
    ) -> None:
        super().__init__(root, batch_size, num_workers, val_split, split_seed)
        self.augment = augment
        self.download = download
        self.system_dir = Path(system_dir) if system_dir else None

    @property
    def raw_dir(self) -> Path:
        return self.root / "FashionMNIST" / "raw"

    def prepare_data(self) -> None:
        self.ensure_files()

    def ensure_files(self) -> None:
        """Make ``raw_dir`` hold the four decompressed files, or fail saying where we looked."""
        if all((self.raw_dir / f).is_file() for f in FILES):
            return
        system = self.system_dir
        if system is not None and all((system / f"{f}.gz").is_file() for f in FILES):
            self.raw_dir.mkdir(parents=True, exist_ok=True)
            for f in FILES:
                if (self.raw_dir / f).is_file():
                    continue
                # write then rename, so concurrent processes never read a partial file
                fd, tmp = tempfile.mkstemp(dir=self.raw_dir, prefix=f".{f}.")
                with os.fdopen(fd, "wb") as out, gzip.open(system / f"{f}.gz", "rb") as src:
                    shutil.copyfileobj(src, out)
                os.replace(tmp, self.raw_dir / f)
            return
        if self.download:
            from torchvision.datasets import FashionMNIST as TV

            try:
                TV(str(self.root), train=True, download=True)
                TV(str(self.root), train=False, download=True)
            except Exception as exc:  # network errors come in many types
                raise SpikenasError(
                    f"Fashion-MNIST download to {self.raw_dir} failed ({type(exc).__name__}: "
                    f"{' '.join(str(exc).split())}); install it with `apt-get install -y dataset-fashion-mnist`"
                ) from None
            return
        looked = f"{self.raw_dir}" + (f" or {system}" if system is not None else "")
        raise SpikenasError(
            f"Fashion-MNIST not found in {looked}; install it with `apt-get install -y "
            "dataset-fashion-mnist` or set data.init_args.download: true"
        )

    def build_dataset(self, train: bool, augment: bool) -> Dataset:
        from torchvision.datasets import FashionMNIST as TV

        self.ensure_files()
        tv = TV(str(self.root), train=train, download=False)
        augment = augment and self.augment
        return TensorImages(
            tv.data, tv.targets, self.mean, self.std,
            crop_padding=self.AUGMENT_PADDING if augment else 0, flip=augment,
        )
