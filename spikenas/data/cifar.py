"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009): 50,000 + 10,000 colour 32x32 images; training
images are augmented as in SNASNet (random crop 32 with padding 4, horizontal flip), all are
normalised with the training set's per-channel mean and std.

The files are torchvision's layout (``<root>/cifar-10-batches-py/``, ``<root>/cifar-100-python/``)
and come from torchvision's download (the archive checked against its MD5 sum, then
extracted), but spikenas reads them itself, as data only (:mod:`spikenas.data.cifar_batch`):
whatever ``verify`` says, no file in the folder can run code. The class-name file
(``batches.meta``, ``meta``) is not read.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
from torch.utils.data import Dataset

from spikenas.data.base import SpikenasDataModule
from spikenas.data.cifar_batch import read_batch
from spikenas.base.errors import SpikenasError


class CIFARImages(Dataset):
    """Images ``[N, 32, 32, 3]`` uint8 and their labels; an item is ``(transform(PIL image),
    label)``, as torchvision's CIFAR datasets give it."""

    def __init__(self, images: np.ndarray, labels: list[int], transform: Callable) -> None:
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


class _CIFAR(SpikenasDataModule):
    """Shared code of :class:`CIFAR10` and :class:`CIFAR100`.

    Args:
        root: see :class:`SpikenasDataModule`; torchvision's layout
            (``<root>/cifar-10-batches-py/``, ``<root>/cifar-100-python/``).
        download: download through torchvision when files are missing (or, with ``verify``,
            differ from the published ones).
        verify: check the files' MD5 sums (false accepts re-packed or trimmed copies; the
            files are read as data only either way).
        augment: random crop + horizontal flip on the training set.
        batch_size, num_workers, val_split, split_seed: see :class:`SpikenasDataModule`.
    """

    input_shape = (3, 32, 32)
    folder = ""
    tv_name = ""
    label_key = ""

    def __init__(
        self,
        root: Optional[str] = None,
        download: bool = False,
        verify: bool = True,
        augment: bool = True,
        batch_size: int = 64,
        num_workers: int = 0,
        val_split: float = 0.1,
        split_seed: int = 0,
    ) -> None:
        super().__init__(root, batch_size, num_workers, val_split, split_seed)
        self.download = download
        self.verify = verify
        self.augment = augment
        self._read: dict[bool, tuple[np.ndarray, list[int]]] = {}

    def _torchvision(self) -> type:
        """torchvision's class of this dataset: its file names, MD5 sums and download address
        (never instantiated: it would unpickle the files itself)."""
        import torchvision.datasets as tvd

        return getattr(tvd, self.tv_name)

    def _files(self, train: bool) -> list[tuple[str, str]]:
        """``(name, MD5)`` of the batch files of the training or test set."""
        tv = self._torchvision()
        return [tuple(pair) for pair in (tv.train_list if train else tv.test_list)]

    def _fetch_needed(self) -> bool:
        """Whether a batch file is missing or, with ``verify``, differs from the published one."""
        from torchvision.datasets.utils import check_integrity

        files = self._files(True) + self._files(False)
        return not all(check_integrity(str(self.root / self.folder / name), md5 if self.verify else None)
                       for name, md5 in files)

    def prepare_data(self) -> None:
        """With ``download``, fetch and extract the archive when :meth:`_fetch_needed`."""
        if not (self.download and self._fetch_needed()):
            return
        from torchvision.datasets.utils import download_and_extract_archive

        tv = self._torchvision()
        try:
            download_and_extract_archive(tv.url, str(self.root), filename=tv.filename, md5=tv.tgz_md5)
        except Exception as exc:  # network errors come in many types
            raise SpikenasError(
                f"{self.tv_name} download to {self.root} failed ({type(exc).__name__}: {' '.join(str(exc).split())})"
            ) from None

    def arrays(self, train: bool) -> tuple[np.ndarray, list[int]]:
        """``(images [N, 32, 32, 3] uint8, labels)`` of the training or test set, read once
        (downloaded first when ``download`` and needed)."""
        if train not in self._read:
            self.prepare_data()
            data, labels = [], []
            for name, md5 in self._files(train):
                path = self.root / self.folder / name
                if not path.is_file():
                    raise SpikenasError(f"{self.tv_name} not found in {self.root / self.folder}: no file {name}; "
                                        "set data.init_args.download: true")
                images, targets = read_batch(path, self.label_key, self.num_classes,
                                             md5 if self.verify else None, self.tv_name)
                data.append(images)
                labels.extend(targets)
            self._read[train] = (np.concatenate(data).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels)
        return self._read[train]

    def transform(self, augment: bool):
        import torchvision.transforms as T

        steps = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment and self.augment else []
        return T.Compose([*steps, T.ToTensor(), T.Normalize(self.mean, self.std)])

    def build_dataset(self, train: bool, augment: bool) -> Dataset:
        return CIFARImages(*self.arrays(train), transform=self.transform(augment))


class CIFAR10(_CIFAR):
    __doc__ = "CIFAR-10: 10 classes." + (_CIFAR.__doc__ or "").split("\n", 1)[1]
    num_classes = 10
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)
    folder = "cifar-10-batches-py"
    tv_name = "CIFAR10"
    label_key = "labels"


class CIFAR100(_CIFAR):
    __doc__ = "CIFAR-100: 100 classes (fine labels)." + (_CIFAR.__doc__ or "").split("\n", 1)[1]
    num_classes = 100
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
    folder = "cifar-100-python"
    tv_name = "CIFAR100"
    label_key = "fine_labels"
