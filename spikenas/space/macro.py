"""The macro-architecture around the cells as data: its shapes and the knobs a budget turns.

The modules built from it (stem, reductions, head) and their layout are in
:mod:`spikenas.network.parts`.

SNASNet's CIFAR-10 macro is ``MacroConfig.snasnet_cifar10()`` (its official HEAD).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from spikenas.base.errors import SpikenasError


# Largest values a macro setting may take: far above any published SNN (T <= 100s, widths <= 1000s)
LIMITS = {"timesteps": 10_000, "channels": 65_536, "channel_multiplier": 64, "stem_stride": 64, "head_pool": 1024,
          "head_hidden": 1 << 20, "votes": 1024, "num_classes": 1 << 20}


@dataclass(frozen=True)
class MacroConfig:
    """Everything about the network that is not a cell.

    Args:
        input_shape: ``(channels, height, width)`` of one image.
        num_classes: number of classes.
        timesteps: ``T``, frames per sample (direct encoding: the image at every step).
        channels: ``C``, channels of the first cell.
        channel_multiplier: channels grow by this factor at every reduction.
        stem_stride: stride of the stem convolution.
        head_pool: average-pooling factor before the classifier (1 = none).
        head_hidden: neurons of the hidden spiking FC layer (0 = no hidden layer).
        votes: output neurons per class, averaged (population voting).
        dropout: dropout probability before the classifier.
    """

    input_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10
    timesteps: int = 5
    channels: int = 32
    channel_multiplier: int = 2
    stem_stride: int = 1
    head_pool: int = 2
    head_hidden: int = 256
    votes: int = 10
    dropout: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise SpikenasError(f"macro input_shape must be (channels, height, width), got {self.input_shape}")
        for name in ("num_classes", "timesteps", "channels", "channel_multiplier", "stem_stride", "head_pool", "votes"):
            if int(getattr(self, name)) < 1:
                raise SpikenasError(f"macro {name} must be >= 1, got {getattr(self, name)}")
        if self.head_hidden < 0:
            raise SpikenasError(f"macro head_hidden must be >= 0, got {self.head_hidden}")
        for name, cap in LIMITS.items():  # what nobody means: refused before anything is allocated
            if int(getattr(self, name)) > cap:
                raise SpikenasError(f"macro {name} must be at most {cap:,}, got {getattr(self, name):,}")
        if not 0.0 <= self.dropout < 1.0:
            raise SpikenasError(f"macro dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def snasnet_cifar10(cls, **overrides: Any) -> "MacroConfig":
        """SNASNet's CIFAR-10 macro (Kim et al., ECCV 2022) as its official ``model_snn.py`` has
        it since its last change (commit 5114ff9, 2022-07-19; HEAD 4980409): ``channel_ratio``
        2, so 2 cells of 256 and 512 channels at 32x32 and 16x16, T = 5, ``second_avgpooling``
        4, a 1024-unit hidden layer and 10 votes per class (``configs/snasnet_cifar10.yaml``)."""
        base = dict(input_shape=(3, 32, 32), num_classes=10, timesteps=5, channels=256,
                    channel_multiplier=2, stem_stride=1, head_pool=4, head_hidden=1024,
                    votes=10, dropout=0.5)
        return cls(**{**base, **overrides})

    @classmethod
    def snasnet_cifar10_263e6bc(cls, **overrides: Any) -> "MacroConfig":
        """SNASNet's CIFAR-10 macro at the intermediate commit 263e6bc of its ``model_snn.py``
        (cells of 128 and 256 channels, no ``channel_ratio``), which spikenas followed before:
        the width of the figures in ``docs/benchmarks.md`` measured before 2026-12-05."""
        return cls.snasnet_cifar10(**{"channels": 128, **overrides})

    @classmethod
    def snasnet_cifar100(cls, **overrides: Any) -> "MacroConfig":
        """SNASNet's CIFAR-100 macro (5114ff9: ``channel_ratio`` 1): cells of 128 and 256
        channels, ``second_avgpooling`` 2 and 5 votes per class (``configs/snasnet_cifar100.yaml``)."""
        return cls.snasnet_cifar10(**{"channels": 128, "num_classes": 100, "head_pool": 2, "votes": 5, **overrides})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data

    def replace(self, **changes: Any) -> "MacroConfig":
        return replace(self, **changes)

    # -- shapes ------------------------------------------------------------------------------
    def cell_shape(self, index: int) -> tuple[int, int, int]:
        """``(C, H, W)`` of cell ``index``'s nodes (channels multiply, size halves per reduction)."""
        _, h, w = self.input_shape
        h = (h - 1) // self.stem_stride + 1
        w = (w - 1) // self.stem_stride + 1
        for _ in range(index):
            h, w = h // 2, w // 2
        if min(h, w) < 1:
            raise SpikenasError(
                f"input {self.input_shape} is too small for {index + 1} cells (each reduction halves it)"
            )
        return self.channels * self.channel_multiplier**index, h, w

    def head_features(self, cells: int) -> int:
        c, h, w = self.cell_shape(cells - 1)
        if h < self.head_pool or w < self.head_pool:
            raise SpikenasError(
                f"macro head_pool {self.head_pool} exceeds the last cell's {h}x{w} feature map"
            )
        return c * (h // self.head_pool) * (w // self.head_pool)
