"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009) through torchvision: 50,000 + 10,000 colour 32x32
images; training images are augmented as in SNASNet (random crop 32 with padding 4, horizontal
flip), all are normalised with the training set's per-channel mean and std.
"""

from __future__ import annotations

from typing import Optional

from torch.utils.data import Dataset

from spikenas.data.base import SpikenasDataModule
from spikenas.errors import SpikenasError


class _CIFAR(SpikenasDataModule):
    """Shared code of :class:`CIFAR10` and :class:`CIFAR100`.

    Args:
        root: see :class:`SpikenasDataModule`; torchvision's layout
            (``<root>/cifar-10-batches-py/``, ``<root>/cifar-100-python/``).
        download: download through torchvision when the files are missing.
        verify: check the files' MD5 sums (false accepts re-packed or trimmed copies).
        augment: random crop + horizontal flip on the training set.
        batch_size, num_workers, val_split, split_seed: see :class:`SpikenasDataModule`.
    """

    input_shape = (3, 32, 32)
    folder = ""
    tv_name = ""

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

    def _dataset_class(self) -> type:
        import torchvision.datasets as tvd

        base = getattr(tvd, self.tv_name)
        if self.verify:
            return base
        # torchvision checks each file against its MD5 sum unless the sum is None
        return type(
            base.__name__,
            (base,),
            {
                "train_list": [[name, None] for name, _ in base.train_list],
                "test_list": [[name, None] for name, _ in base.test_list],
                "meta": {**base.meta, "md5": None},
            },
        )

    def prepare_data(self) -> None:
        if self.download:
            self._load(train=True, transform=None)
            self._load(train=False, transform=None)

    def _load(self, train: bool, transform) -> Dataset:
        cls = self._dataset_class()
        try:
            return cls(str(self.root), train=train, transform=transform, download=self.download)
        except RuntimeError as exc:
            raise SpikenasError(
                f"{self.tv_name} not found (or corrupted) in {self.root / self.folder}: "
                f"{' '.join(str(exc).split())}; set data.init_args.download: true "
                "(or verify: false for a re-packed copy)"
            ) from None
        except OSError as exc:  # download failures
            raise SpikenasError(
                f"{self.tv_name} download to {self.root} failed ({type(exc).__name__}: {' '.join(str(exc).split())})"
            ) from None

    def transform(self, augment: bool):
        import torchvision.transforms as T

        steps = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment and self.augment else []
        return T.Compose([*steps, T.ToTensor(), T.Normalize(self.mean, self.std)])

    def build_dataset(self, train: bool, augment: bool) -> Dataset:
        return self._load(train, self.transform(augment))


class CIFAR10(_CIFAR):
    __doc__ = "CIFAR-10: 10 classes." + (_CIFAR.__doc__ or "").split("\n", 1)[1]
    num_classes = 10
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)
    folder = "cifar-10-batches-py"
    tv_name = "CIFAR10"


class CIFAR100(_CIFAR):
    __doc__ = "CIFAR-100: 100 classes (fine labels)." + (_CIFAR.__doc__ or "").split("\n", 1)[1]
    num_classes = 100
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
    folder = "cifar-100-python"
    tv_name = "CIFAR100"
