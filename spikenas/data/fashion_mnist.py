"""Fashion-MNIST (Xiao et al., 2017): 60,000 + 10,000 greyscale 28x28 images, 10 classes.

Looked for, in order: the decompressed files in ``<root>/FashionMNIST/raw/`` (torchvision's
layout); Debian's copy (``apt-get install dataset-fashion-mnist``, in
``/usr/share/datasets/fashion-mnist/``), decompressed into that layout on first use (torchvision
rejects Debian's recompressed ``.gz`` files: their checksums differ); torchvision's download when
``download`` is true. Every file is checked before use (:mod:`spikenas.data.idx`) and read by
spikenas as raw bytes, never through torchvision's dataset class (which would prefer a
``processed/*.pt`` file, unpickled and unchecked, to the checked files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from torch.utils.data import Dataset

from spikenas.data.base import SpikenasDataModule, TensorImages
from spikenas.data.idx import decompress_checked, idx_problem, item_count, read_idx
from spikenas.base.errors import SpikenasError

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
        """Make ``raw_dir`` hold the four decompressed files, checked (IDX headers, sizes,
        labels), or fail in one line naming the file that is missing or damaged. A damaged copy
        in ``raw_dir`` is replaced from the system package or the download when one is
        available, and never used."""
        bad = {f: p for f in FILES if (self.raw_dir / f).is_file() and (p := self._problem(self.raw_dir / f))}
        if not bad and all((self.raw_dir / f).is_file() for f in FILES):
            return self._check_counts()
        system = self.system_dir
        if system is not None and all((system / f"{f}.gz").is_file() for f in FILES):
            self.raw_dir.mkdir(parents=True, exist_ok=True)
            for f in FILES:
                if (self.raw_dir / f).is_file() and f not in bad:
                    continue
                problem = decompress_checked(system / f"{f}.gz", self.raw_dir / f, *self._expected(f))
                if problem:
                    raise SpikenasError(f"Fashion-MNIST file {system / f}.gz is damaged ({problem}); reinstall it with "
                                        "`apt-get install --reinstall -y dataset-fashion-mnist`")
            return self._check_counts()
        if self.download:
            for f in bad:  # fetched again below
                (self.raw_dir / f).unlink()
            self._download()
            bad = {f: p for f in FILES if (p := self._problem(self.raw_dir / f))}
        if bad:
            name, problem = next(iter(bad.items()))
            raise SpikenasError(f"Fashion-MNIST file {self.raw_dir / name} is damaged ({problem}); delete it so that "
                                "it is fetched again")
        if all((self.raw_dir / f).is_file() for f in FILES):
            return self._check_counts()
        looked = f"{self.raw_dir}" + (f" or {system}" if system is not None else "")
        raise SpikenasError(
            f"Fashion-MNIST not found in {looked}; install it with `apt-get install -y "
            "dataset-fashion-mnist` or set data.init_args.download: true"
        )

    @staticmethod
    def _expected(name: str) -> tuple[tuple[int, ...], int | None]:
        """``(item shape, classes)`` of one of the four files (labels are checked against the
        class count)."""
        return ((), FashionMNIST.num_classes) if "labels" in name else ((28, 28), None)

    def _problem(self, path: Path) -> str | None:
        return idx_problem(path, *self._expected(path.name))

    def _check_counts(self) -> None:
        for split in ("train", "t10k"):
            images, labels = (self.raw_dir / f"{split}-{kind}" for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"))
            if item_count(images) != item_count(labels):
                raise SpikenasError(f"Fashion-MNIST files {images} and {labels} disagree: {item_count(images):,} images "
                                    f"but {item_count(labels):,} labels; delete them so that they are fetched again")

    def _download(self) -> None:
        from torchvision.datasets import FashionMNIST as TV

        tv = TV.__new__(TV)  # its download only: constructing it would also load, preferring processed/*.pt
        tv.root = str(self.root)
        try:
            tv.download()
        except Exception as exc:  # network errors come in many types
            raise SpikenasError(
                f"Fashion-MNIST download to {self.raw_dir} failed ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())}); install it with `apt-get install -y dataset-fashion-mnist`"
            ) from None

    def build_dataset(self, train: bool, augment: bool) -> Dataset:
        self.ensure_files()
        split = "train" if train else "t10k"
        images = read_idx(self.raw_dir / f"{split}-images-idx3-ubyte")
        labels = read_idx(self.raw_dir / f"{split}-labels-idx1-ubyte")
        augment = augment and self.augment
        return TensorImages(
            images, labels, self.mean, self.std,
            crop_padding=self.AUGMENT_PADDING if augment else 0, flip=augment,
        )
