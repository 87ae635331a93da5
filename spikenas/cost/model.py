"""What a network costs in bytes: the :class:`CostModel` protocol a cost-model plugin follows,
and the :class:`MemoryReport` it returns (per layer and in total)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from spikenas.cost.profile import NetworkProfile
from spikenas.base.units import format_bytes


@dataclass(frozen=True)
class LayerCost:
    name: str
    params: int
    neurons: int
    param_bytes: int
    state_bytes: int


@dataclass(frozen=True)
class MemoryReport:
    """Bytes of a whole network.

    ``total_bytes`` is what budgets are checked against; ``param_bytes`` and ``state_bytes``
    (neuron membrane state) are always reported, whether or not the model counts the state in
    the total. ``refusal``: for a model of hardware with limits of its own (a chip's cores), why
    the network does not run on it at all, in one line naming the layer and the limit (None
    when it does); such a network meets no budget, and the search never returns it.
    """

    model: str
    total_bytes: int
    param_bytes: int
    state_bytes: int
    layers: tuple[LayerCost, ...]
    refusal: str | None = None

    @classmethod
    def at_precision(
        cls, model: str, profile: NetworkProfile, weight_bits: int, state_bits: int, count_state: bool
    ) -> "MemoryReport":
        """Every parameter at ``weight_bits`` and every membrane value at ``state_bits``, per
        layer and in total; ``total_bytes`` adds the state bytes only when ``count_state``."""
        layers = tuple(
            LayerCost(
                layer.name, layer.params, layer.neurons,
                bits_to_bytes(layer.params, weight_bits), bits_to_bytes(layer.neurons, state_bits),
            )
            for layer in profile.layers
        )
        param_bytes = bits_to_bytes(profile.params, weight_bits)
        state_bytes = bits_to_bytes(profile.neurons, state_bits)
        total = param_bytes + state_bytes if count_state else param_bytes
        return cls(model, total, param_bytes, state_bytes, layers)

    def format(self) -> str:
        """A human-readable per-layer table ending with the totals; every column as wide as its
        widest value, with two spaces between columns, so wide values never run together."""
        header = ("layer", "params", "neurons", "param B", "state B")
        body = [(layer.name, layer.params, layer.neurons, layer.param_bytes, layer.state_bytes) for layer in self.layers]
        body.append((f"total ({self.model})", sum(l.params for l in self.layers), sum(l.neurons for l in self.layers),
                     self.param_bytes, self.state_bytes))
        cells = [header] + [(name, *(f"{v:,}" for v in values)) for name, *values in body]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        rows = [f"{row[0]:<{widths[0]}}" + "".join(f"  {value:>{w}}" for value, w in zip(row[1:], widths[1:])) for row in cells]
        rows.append(f"budgeted footprint: {self.total_bytes:,} bytes ({format_bytes(self.total_bytes)})")
        if self.refusal is not None:
            rows.append(f"does not run on the hardware of cost model {self.model!r}: {self.refusal}")
        return "\n".join(rows)


class CostModel(Protocol):
    """``cost(profile) -> MemoryReport``; pure, fast (called for every candidate)."""

    name: str

    def __call__(self, profile: NetworkProfile) -> MemoryReport: ...


def bits_to_bytes(count: int, bits: int) -> int:
    """Bytes to store ``count`` values of ``bits`` bits each, packed (rounded up)."""
    return math.ceil(count * bits / 8)
