"""spikenas-dwsep: an example third-party spikenas plugin.

It adds

- operation ``dwsep3x3``: LIF -> depthwise conv 3x3 -> pointwise conv 1x1 -> batch norm,
  ``C -> C`` channels, ``9C + C^2 + 2C`` parameters (a conv3x3 edge has ``9C^2 + 2C``);
- cost model ``int8_state``: every parameter at 8 bits plus every neuron's membrane
  potential at 16 bits, both counted in ``total_bytes``.

It uses only spikenas's public plugin API (``spikenas.hookimpl``, ``spikenas.ops``,
``spikenas.neuron``, ``spikenas.cost``) and never imports pluggy.
"""

from __future__ import annotations

from torch import nn

from spikenas import hookimpl
from spikenas.cost import MemoryReport, NetworkProfile
from spikenas.neuron import LIF, NeuronConfig
from spikenas.ops import SpikingSequential

__version__ = "0.1.0"
__all__ = ["Int8StateMemory", "build_dwsep3x3", "spikenas_register_cost_models", "spikenas_register_operations"]


def build_dwsep3x3(channels: int, neuron: NeuronConfig) -> SpikingSequential:
    """The uniform operation factory: ``[T, B, C, H, W] -> [T, B, C, H, W]``.

    ``SpikingSequential`` gives the module both interfaces a cell needs: ``forward`` over a
    whole sequence and ``step(x, state)`` for cells with backward edges.
    """
    return SpikingSequential(
        LIF(neuron),
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),  # depthwise
        nn.Conv2d(channels, channels, 1, bias=False),  # pointwise
        nn.BatchNorm2d(channels),
    )


class Int8StateMemory:
    """Parameters at ``weight_bits`` (8) plus membrane state at ``state_bits`` (16), both counted.

    Called with a :class:`spikenas.cost.NetworkProfile`, returns a
    :class:`spikenas.cost.MemoryReport` with one row per layer of the profile.
    """

    def __init__(self, weight_bits: int = 8, state_bits: int = 16) -> None:
        self.name = "int8_state"
        self.weight_bits = weight_bits
        self.state_bits = state_bits

    def __call__(self, profile: NetworkProfile) -> MemoryReport:
        return MemoryReport.at_precision(self.name, profile, self.weight_bits, self.state_bits, count_state=True)


@hookimpl
def spikenas_register_operations(registry) -> None:
    registry.add("dwsep3x3", build_dwsep3x3)


@hookimpl
def spikenas_register_cost_models(registry) -> None:
    registry.add("int8_state", Int8StateMemory)
