"""Quantisation-aware training (SpikeNAS step 4): the network the budget describes is the one trained.

A cost model that counts weights at ``weight_bits`` (``memory`` with ``weight_bits: 8``)
describes a network whose weights take ``2**bits - 1`` values; :func:`quantize_weights` makes
the trained network that network. Every convolution and linear weight is replaced, through
``torch.nn.utils.parametrize``, by its fake-quantised value (torch's
``fake_quantize_per_channel_affine`` / ``..._per_tensor_affine``): symmetric, zero point 0,
integers in ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``, the scale set by the weights' largest
magnitude (per output channel, or per tensor). The forward pass, validation and test all see
the quantised weights; the gradient passes straight through the rounding to the float weights
the optimiser keeps. Checkpoints hold the float weights (``...parametrizations.weight.original``)
and restore the same quantised network.

Per-channel is the default because it is exact at deployment: folding the batch norm that
follows a convolution multiplies each output channel by a constant, which changes that
channel's scale and not its integers. Batch-norm statistics and biases stay in float (an
accelerator keeps them as per-channel scales and wide biases).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn.utils import parametrize

from spikenas.base.errors import SpikenasError


@dataclass(frozen=True)
class QuantizationConfig:
    """How the trained network's weights are quantised.

    Args:
        weight_bits: bits per convolution and linear weight (2..16); None = float32, no
            quantisation.
        per_channel: one scale per output channel (exact under batch-norm folding) rather than
            one per weight tensor.
    """

    weight_bits: Optional[int] = None
    per_channel: bool = True

    def check(self) -> "QuantizationConfig":
        bits = self.weight_bits
        if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16):
            raise SpikenasError(f"model.quantization.weight_bits must be an integer in 2..16 or null, got {bits!r}")
        return self

    @property
    def enabled(self) -> bool:
        return self.weight_bits is not None


class FakeQuantWeight(nn.Module):
    """Parametrization ``w -> fake_quantize(w)``: symmetric, zero point 0, ``bits`` bits."""

    def __init__(self, bits: int, per_channel: bool = True) -> None:
        super().__init__()
        self.bits = bits
        self.per_channel = per_channel
        self.qmax = 2 ** (bits - 1) - 1

    def scale(self, weight: torch.Tensor) -> torch.Tensor:
        """``[out]`` per-channel scales (or a one-element tensor) from the detached weights."""
        magnitude = weight.detach().abs()
        peak = magnitude.flatten(1).amax(1) if self.per_channel else magnitude.amax().reshape(1)
        return (peak / self.qmax).clamp_min(torch.finfo(torch.float32).tiny).float()

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        scale = self.scale(weight)
        zero = torch.zeros_like(scale, dtype=torch.int32)
        if self.per_channel:
            return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -self.qmax, self.qmax)
        return torch.fake_quantize_per_tensor_affine(weight, scale[0], zero[0], -self.qmax, self.qmax)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, per_channel={self.per_channel}"


def quantize_weights(network: nn.Module, config: QuantizationConfig) -> int:
    """Fake-quantise every ``Conv2d`` and ``Linear`` weight of ``network`` in place; returns how
    many weight tensors were quantised (0 when ``config`` is disabled)."""
    if not config.check().enabled:
        return 0
    count = 0
    for module in network.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and not parametrize.is_parametrized(module, "weight"):
            parametrize.register_parametrization(module, "weight", FakeQuantWeight(config.weight_bits, config.per_channel))
            count += 1
    return count
