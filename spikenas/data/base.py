"""The base datamodule: seeded train/validation split, loaders, and the search's scoring batch.

A subclass says what its images are (``num_classes``, ``input_shape``, normalisation) and how
to build its train and test sets (:meth:`SpikenasDataModule.build_dataset`); the base class
holds out ``val_split`` of the training set for validation (a seeded, reproducible split; the
held-out images are not augmented) and builds the loaders.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from spikenas.base.errors import SpikenasError

DEFAULT_ROOT = "~/.cache/spikenas/datasets"


def data_root(root: Optional[str]) -> Path:
    """``root``, else ``$SPIKENAS_DATA``, else ``~/.cache/spikenas/datasets`` (expanded)."""
    return Path(os.path.expanduser(root or os.environ.get("SPIKENAS_DATA") or DEFAULT_ROOT))


class SpikenasDataModule(pl.LightningDataModule):
    """Base class of the spikenas datamodules (use a subclass: ``class_path: FashionMNIST``).

    Args:
        root: directory of the data files (default ``$SPIKENAS_DATA`` or
            ``~/.cache/spikenas/datasets``).
        batch_size: images per batch (per device).
        num_workers: loader worker processes (0 = load in the main process).
        val_split: fraction of the training set held out for validation (0: validate on
            the test set).
        split_seed: seed of the train/validation split.
    """

    num_classes: int = 10
    input_shape: tuple[int, int, int] = (1, 28, 28)
    mean: Sequence[float] = (0.0,)
    std: Sequence[float] = (1.0,)

    def __init__(
        self,
        root: Optional[str] = None,
        batch_size: int = 64,
        num_workers: int = 0,
        val_split: float = 0.1,
        split_seed: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 <= val_split < 1.0:
            raise SpikenasError(f"data val_split must be in [0, 1), got {val_split}")
        if batch_size < 1:
            raise SpikenasError(f"data batch_size must be >= 1, got {batch_size}")
        self.root = data_root(root)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_split = val_split
        self.split_seed = split_seed
        # set per instance so that the CLI can link them before setup()
        self.num_classes = int(self.num_classes)
        self.input_shape = tuple(int(v) for v in self.input_shape)
        self.train_set: Optional[Dataset] = None
        self.val_set: Optional[Dataset] = None
        self.test_set: Optional[Dataset] = None
        self._plain_train: Optional[Dataset] = None

    # -- what a subclass provides ------------------------------------------------------------
    def build_dataset(self, train: bool, augment: bool) -> Dataset:
        """The training (``train=True``) or test set yielding ``(image [c, H, W] float, label)``,
        normalised, augmented when ``augment`` (only ever asked for the training set)."""
        raise SpikenasError(
            f"{type(self).__name__} is not a dataset; use a subclass such as "
            "spikenas.data.FashionMNIST, CIFAR10, CIFAR100 or Synthetic"
        )

    # -- split -------------------------------------------------------------------------------
    def split_indices(self, n: int) -> tuple[list[int], list[int]]:
        """``(train, val)`` indices of a training set of ``n`` images (seeded)."""
        n_val = int(round(n * self.val_split))
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        return sorted(perm[n_val:]), sorted(perm[:n_val])

    def plain_train_set(self) -> Dataset:
        """The whole training set without augmentation (cached)."""
        if self._plain_train is None:
            self._plain_train = self.build_dataset(train=True, augment=False)
        return self._plain_train

    def setup(self, stage: Optional[str] = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            plain = self.plain_train_set()
            train_idx, val_idx = self.split_indices(len(plain))
            self.train_set = Subset(self.build_dataset(train=True, augment=True), train_idx)
            self.val_set = Subset(plain, val_idx) if val_idx else None
        if self.test_set is None and (stage in (None, "test", "predict") or self.val_set is None):
            self.test_set = self.build_dataset(train=False, augment=False)

    # -- the search's scoring batch ----------------------------------------------------------
    def sample_batch(self, batch_size: int, seed: int) -> torch.Tensor:
        """``[batch_size, c, H, W]`` normalised training images (no augmentation), the same for
        the same ``seed``; drawn from the training part of the split. Needs no ``setup()``."""
        plain = self.plain_train_set()
        train_idx, _ = self.split_indices(len(plain))
        if batch_size > len(train_idx):
            raise SpikenasError(
                f"scoring batch of {batch_size} images exceeds the {len(train_idx)} training images"
            )
        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(train_idx), generator=g)[:batch_size].tolist()
        return torch.stack([plain[train_idx[i]][0] for i in pick])

    # -- loaders -----------------------------------------------------------------------------
    def _loader(self, dataset: Optional[Dataset], shuffle: bool) -> DataLoader:
        """A loader of ``dataset``. Each pass over a loader draws a seed; the unshuffled
        (evaluation) loaders draw it from a generator of their own, so validating, however
        often, leaves torch's global random stream, and with it the training data order, as
        it was."""
        if dataset is None:
            raise SpikenasError(f"{type(self).__name__}: no dataset; was setup() called?")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            generator=None if shuffle else torch.Generator().manual_seed(0),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set if self.val_set is not None else self.test_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)


class TensorImages(Dataset):
    """Images held as one uint8 tensor ``[N, H, W]`` or ``[N, H, W, c]``, normalised per item
    (a fast path without PIL: a batch is one gather and one normalisation).

    Args:
        images, labels: the data (``labels`` ``[N]`` integers).
        mean, std: per-channel normalisation, in units of the [0, 1] pixel range.
        crop_padding: when > 0, each image is shifted by a random offset in
            ``[-crop_padding, crop_padding]`` pixels along each axis, the uncovered border
            filled with black (torchvision's ``RandomCrop(H, padding=crop_padding)``).
        flip: mirror each image left-right with probability 1/2 (``RandomHorizontalFlip``).

    Augmentation draws from torch's global generator (seeded by ``seed_everything`` and, in
    loader workers, per worker by PyTorch).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        crop_padding: int = 0,
        flip: bool = False,
    ) -> None:
        if crop_padding < 0:
            raise SpikenasError(f"crop_padding must be >= 0, got {crop_padding}")
        if images.dim() == 3:
            images = images.unsqueeze(1)
        else:
            images = images.permute(0, 3, 1, 2)
        self.images = images.contiguous()
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1) * 255.0
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1) * 255.0
        self.crop_padding = int(crop_padding)
        self.flip = bool(flip)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self._batch(torch.tensor([index]))
        return x[0], y[0]

    def __getitems__(self, indices: list[int]) -> Any:
        x, y = self._batch(torch.as_tensor(indices))
        return list(zip(x.unbind(0), y.unbind(0)))

    def _batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``([n, c, H, W] float normalised, [n] labels)`` of the images at ``idx``."""
        images = self.images[idx]
        if self.crop_padding or self.flip:
            images = self._augment(images)
        return (images.float() - self.mean) / self.std, self.labels[idx]

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        """Random shift (zero fill) and left-right flip of ``[n, c, H, W]`` uint8 images, as
        one gather from the zero-padded batch."""
        n, c, h, w = images.shape
        p = self.crop_padding
        padded = torch.nn.functional.pad(images, (p, p, p, p)) if p else images
        dy = torch.randint(0, 2 * p + 1, (n, 1, 1))
        dx = torch.randint(0, 2 * p + 1, (n, 1))
        cols = torch.arange(w).expand(n, w)
        if self.flip:
            mirrored = torch.rand(n, 1) < 0.5
            cols = torch.where(mirrored, cols.flip(1), cols)
        rows = (torch.arange(h).view(1, h, 1) + dy).expand(n, h, w)
        cols = (cols + dx).unsqueeze(1).expand(n, h, w)
        batch = torch.arange(n).view(n, 1, 1).expand(n, h, w)
        return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
