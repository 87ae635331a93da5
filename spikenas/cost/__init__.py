"""Memory cost: what a network holds (profile) and what it costs in bytes (report).

A :class:`NetworkProfile` lists, per layer, its parameter count and its neuron count (one
membrane value per LIF neuron for one sample); it is computed from genotype and macro without
allocating weights (:mod:`spikenas.network.profile`). A cost model (plugin) turns a profile into
a :class:`MemoryReport`, whose ``total_bytes`` is what a budget is checked against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class HardwareLayer:
    """One ``Conv2d``, ``Linear`` or LIF layer as hardware sees it, per sample and timestep.

    ``input_shape``/``output_shape``: ``(C, H, W)`` or ``(F,)``; ``kernel``: ``(kh, kw)`` or
    None; ``fan_in``: synapses into one output neuron (1 for LIF neurons, which each integrate
    one input current); ``fan_out``: synapses one input element drives (for LIF layers: one
    neuron's spike, see :mod:`spikenas.synops`); ``neurons``: LIF neurons (0 for weighted
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
    the total.
    """

    model: str
    total_bytes: int
    param_bytes: int
    state_bytes: int
    layers: tuple[LayerCost, ...]

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
        return "\n".join(rows)


class CostModel(Protocol):
    """``cost(profile) -> MemoryReport``; pure, fast (called for every candidate)."""

    name: str

    def __call__(self, profile: NetworkProfile) -> MemoryReport: ...


def bits_to_bytes(count: int, bits: int) -> int:
    """Bytes to store ``count`` values of ``bits`` bits each, packed (rounded up)."""
    return math.ceil(count * bits / 8)


_UNITS = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}


def parse_bytes(value: int | float | str | None, name: str = "budget") -> int | None:
    """``500KB`` -> 500000, ``2MiB`` -> 2097152, ``1234`` -> 1234; None (``none``, ``null``,
    empty) stays None (no limit). Anything else that is not a positive, finite size (``inf``,
    ``1e999``, ``-1``, ``nan``) is a one-line error against ``name``, the setting."""
    from spikenas.errors import SpikenasError

    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise SpikenasError(f"{name} {value!r} is not a size; use bytes or units like 500KB, 2MiB")
    if isinstance(value, (int, float)):
        if not (isinstance(value, int) or math.isfinite(value)) or value <= 0:
            raise SpikenasError(f"{name} must be a positive, finite number of bytes, got {value}")
        amount = value
    else:
        text = str(value).strip().replace(" ", "").replace("_", "")
        if text.lower() in ("", "none", "null"):
            return None
        number = text.rstrip("kKmMgGiIbB")
        unit = text[len(number):].upper() or "B"
        try:
            amount = float(number) * _UNITS[unit]
        except (ValueError, KeyError, OverflowError):
            amount = -1.0
        if not math.isfinite(amount) or amount <= 0:
            raise SpikenasError(f"{name} {_short(value)} is not a size; use bytes or units like 500KB, 2MiB")
    if amount > MAX_BYTES:
        raise SpikenasError(f"{name} {_short(value)} is more than {format_bytes(MAX_BYTES)}: no network is that large (a typo?)")
    return int(amount)


MAX_BYTES = 1 << 50
"""The largest size a setting may name (1 PiB): anything larger is a typo, and overflows arithmetic."""


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def format_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    for unit, size in (("PiB", 1024**5), ("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"
