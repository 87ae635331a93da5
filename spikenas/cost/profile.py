"""What a network holds, per part and per hardware layer, computed from genotype and macro
without allocating weights (:mod:`spikenas.network.profile`): the input of every cost model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HardwareLayer:
    """One ``Conv2d``, ``Linear`` or LIF layer as hardware sees it, per sample and timestep.

    ``input_shape``/``output_shape``: ``(C, H, W)`` or ``(F,)``; ``kernel``: ``(kh, kw)`` or
    None; ``fan_in``: synapses into one output neuron (1 for LIF neurons, which each integrate
    one input current); ``fan_out``: synapses one input element drives (for LIF layers: one
    neuron's spike, see :mod:`spikenas.cost.synops`); ``neurons``: LIF neurons (0 for weighted
    layers); ``weights``: its weight count.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kernel: tuple[int, int] | None
    fan_in: int
    fan_out: int
    neurons: int
    weights: int


@dataclass(frozen=True)
class LayerProfile:
    """One part of the network (``stem``, a cell edge ``cell0.0>1:conv3x3``, ``reduction0``,
    ``head``): ``params`` scalars, ``neurons`` LIF neurons (membrane values per sample), and
    ``hardware``, its ``Conv2d``/``Linear``/LIF layers in the order they run (names relative to
    the part), for cost models of neuromorphic cores (neurons per core, fan-in, fan-out)."""

    name: str
    params: int
    neurons: int
    hardware: tuple[HardwareLayer, ...] = ()


@dataclass(frozen=True)
class NetworkProfile:
    layers: tuple[LayerProfile, ...]

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def neurons(self) -> int:
        return sum(layer.neurons for layer in self.layers)
