"""A synthetic, learnable image task for fast tests: each class is a fixed random pattern.

Image ``i`` of class ``k`` is ``signal * pattern_k + noise`` with a smooth random pattern per
class; everything is generated from ``seed``, so the task is the same in every process.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, TensorDataset

from spikenas.data.base import SpikenasDataModule


class Synthetic(SpikenasDataModule):
    """Class-dependent patterns plus noise, already normalised.

    Args:
        num_classes: number of classes.
        input_shape: ``(channels, height, width)``.
        train_size: training images (validation is ``val_split`` of them).
        test_size: test images.
        signal: pattern amplitude relative to the unit noise (higher is easier).
        seed: seed of the patterns and the samples.
        batch_size, num_workers, val_split, split_seed: see :class:`SpikenasDataModule`.
    """

    def __init__(
        self,
        num_classes: int = 10,
        input_shape: tuple[int, int, int] = (1, 16, 16),
        train_size: int = 512,
        test_size: int = 128,
        signal: float = 1.0,
        seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        val_split: float = 0.1,
        split_seed: int = 0,
    ) -> None:
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape)
        super().__init__(None, batch_size, num_workers, val_split, split_seed)
        self.train_size = train_size
        self.test_size = test_size
        self.signal = signal
        self.seed = seed

    def patterns(self) -> torch.Tensor:
        """``[classes, c, H, W]``: smooth (upsampled low-resolution) unit-variance patterns."""
        c, h, w = self.input_shape
        g = torch.Generator().manual_seed(self.seed)
        low = torch.randn(self.num_classes, c, max(1, h // 4), max(1, w // 4), generator=g)
        up = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
        return up / up.flatten(1).std(1).clamp_min(1e-6).view(-1, 1, 1, 1)

    def build_dataset(self, train: bool, augment: bool) -> Dataset:
        n = self.train_size if train else self.test_size
        g = torch.Generator().manual_seed(self.seed * 2 + (1 if train else 2))
        labels = torch.arange(n) % self.num_classes
        labels = labels[torch.randperm(n, generator=g)]
        noise = torch.randn(n, *self.input_shape, generator=g)
        images = self.signal * self.patterns()[labels] + noise
        return TensorDataset(images, labels)
