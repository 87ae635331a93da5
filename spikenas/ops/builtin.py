"""The five built-in operations of SNASNet's cell, registered as a plugin like any other.

All are built by ``build(channels, neuron)`` and keep ``[T, B, C, H, W]`` unchanged:

- ``zero``: no connection (``connects=False``: the edge is pruned, never built);
- ``skip``: identity;
- ``conv1x1``: LIF -> conv 1x1 (no bias) -> batch norm;
- ``conv3x3``: LIF -> conv 3x3, padding 1 (no bias) -> batch norm;
- ``avgpool``: 3x3 average pooling, stride 1, padding 1 (no neuron, no parameters).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spikenas.neuron import LIF, NeuronConfig
from spikenas.ops.sequential import SpikingSequential
from spikenas.plugin import hookimpl


class Zero(nn.Module):
    """Outputs zeros; exists so that ``zero`` can be built, though cells prune it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    def step(self, x: torch.Tensor, state: tuple | None) -> tuple[torch.Tensor, tuple]:
        return torch.zeros_like(x), ()


def build_zero(channels: int, neuron: NeuronConfig) -> nn.Module:
    return Zero()


def build_skip(channels: int, neuron: NeuronConfig) -> nn.Module:
    return SpikingSequential(nn.Identity())


def spiking_conv(channels: int, neuron: NeuronConfig, kernel_size: int) -> SpikingSequential:
    """LIF -> conv ``kernel_size`` (same padding, no bias) -> batch norm, ``C -> C``."""
    return SpikingSequential(
        LIF(neuron),
        nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(channels),
    )


def build_conv1x1(channels: int, neuron: NeuronConfig) -> nn.Module:
    return spiking_conv(channels, neuron, 1)


def build_conv3x3(channels: int, neuron: NeuronConfig) -> nn.Module:
    return spiking_conv(channels, neuron, 3)


class AvgPool3x3(nn.Module):
    """3x3 average pooling, stride 1, padding 1, border windows averaged over their valid
    pixels (``avg_pool2d(count_include_pad=False)``): ``[N, C, H, W] -> [N, C, H, W]``.

    Computed as a depthwise convolution with a ones kernel divided by the valid-pixel count,
    which is about 3x faster than ``avg_pool2d`` on CPU and equal up to float rounding.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels, (h, w) = x.shape[1], x.shape[-2:]
        summed = F.conv2d(x, x.new_ones(channels, 1, 3, 3), padding=1, groups=channels)
        count = F.conv2d(x.new_ones(1, 1, h, w), x.new_ones(1, 1, 3, 3), padding=1)
        return summed / count


def build_avgpool(channels: int, neuron: NeuronConfig) -> nn.Module:
    return SpikingSequential(AvgPool3x3())


@hookimpl(tryfirst=True)  # built-ins first: a third party that reuses a name is the one named
def spikenas_register_operations(registry) -> None:
    registry.add("zero", build_zero, connects=False)
    registry.add("skip", build_skip)
    registry.add("conv1x1", build_conv1x1)
    registry.add("conv3x3", build_conv3x3)
    registry.add("avgpool", build_avgpool)
