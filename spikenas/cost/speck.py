"""The ``speck`` cost model: SynSense's DYNAP-CNN and Speck chips as sinabs's back end maps a
network onto them, one layer per core, each core's memories a limit of its own.

The chip has 9 cores (sinabs 3.1.3, ``sinabs/backend/dynapcnn/chips/dynapcnn.py``,
``DynapcnnConfigBuilder.get_constraints``, shared by the Speck 2e and 2f builders); in memory
entries (weights 8-bit, neuron states 16-bit: ``docs/speck/overview.md``):

======  ================  ================  ============
cores   kernel entries    neuron entries    bias entries
======  ================  ================  ============
0-2     16 Ki             64 Ki             1 Ki
3-4     32 Ki             32 Ki             1 Ki
5-6     64 Ki             16 Ki             1 Ki
7-8     16 Ki             16 Ki             1 Ki
======  ================  ================  ============

A layer is a ``Conv2d`` or ``Linear`` of the profile's hardware layers with the neurons it
drives (sinabs's ``DynapcnnLayer``: convolution, IAF neurons, pooling). What it takes of a core
(``DynapcnnLayer.memory_summary``, ``sinabs/backend/dynapcnn/dynapcnn_layer.py``), for ``c``
input and ``f`` output channels, a ``kh x kw`` kernel and an ``H x W`` output map, each count
rounded up to a power of two by the address encoding::

    kernel entries = c * 2 ** (ceil(log2(kh * kw)) + ceil(log2(f)))
    neuron entries = f * 2 ** (ceil(log2(H)) + ceil(log2(W)))
    bias entries   = f   (batch norm folds into a bias per output channel)

A ``Linear`` is the convolution sinabs converts it to (``convert_linear_to_conv``): after a
flatten, its kernel covers the map before flattening (found from the part's last LIF layer
and the pooling between); on a flat input it is a 1x1 convolution of ``c`` = its inputs. A
grouped convolution counts dense, as the export writes it.
A layer also keeps to the per-layer limits of ``docs/speck/overview.md`` and
``sinabs/validate_memory_speck.py``: at most 1,024 channels in and out, a kernel of at most
16x16, an input map of at most 128x128 and an output map of at most 64x64.

The network runs when every layer keeps to them and each gets a core of its own that holds
its kernel, neuron and bias entries (``LayerConstraints.fits`` and the bipartite matching of
``get_valid_mapping``, ``sinabs/backend/dynapcnn/mapping.py``): so no more layers than cores.
Otherwise the report's ``refusal`` names the first layer or limit that fails. ``total_bytes``
is the memory its layers take: kernel entries at 1 byte, neuron entries at 2 bytes; a budget
limits it further. Not modelled (``docs/deploy.md``): each core sends its spikes to at most 2
other cores; sinabs maps only IAF neurons, and only convolutions followed by neurons, so the
fixed-weight layers of the 3x3 average pool's NIR form and a cell's sums of currents are not
placed at all.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from spikenas.cost.model import LayerCost, MemoryReport
from spikenas.cost.profile import HardwareLayer, NetworkProfile
from spikenas.plugin import hookimpl

KI = 1024
WEIGHT_BYTES, STATE_BYTES = 1, 2  # 8-bit kernel entries, 16-bit neuron states
MAX_CHANNELS, MAX_KERNEL, MAX_INPUT_MAP, MAX_OUTPUT_MAP = 1024, 16, 128, 64


@dataclass(frozen=True)
class Core:
    """One core's memories, in entries."""

    kernel: int
    neurons: int
    biases: int = KI

    def holds(self, need: "LayerNeed") -> bool:
        return need.kernel <= self.kernel and need.neurons <= self.neurons and need.biases <= self.biases


CORES: tuple[Core, ...] = ((Core(16 * KI, 64 * KI),) * 3 + (Core(32 * KI, 32 * KI),) * 2
                           + (Core(64 * KI, 16 * KI),) * 2 + (Core(16 * KI, 16 * KI),) * 2)


@dataclass(frozen=True)
class LayerNeed:
    """What one layer takes of a core (entries), and the first per-layer limit it breaks."""

    name: str
    kernel: int
    neurons: int
    biases: int
    over: str | None = None


def _ceil_log2(n: int) -> int:
    return (n - 1).bit_length()


def layer_need(name: str, layer: HardwareLayer, image: tuple[int, int, int] | None = None) -> LayerNeed:
    """The entries ``layer`` (a ``conv`` or ``linear`` :class:`HardwareLayer`) takes of a core,
    named ``name``. ``image``: the ``(C, H, W)`` a linear layer's input had before flattening
    (None: a flat input, a 1x1 convolution)."""
    if layer.kind == "linear":
        c, h, w = image or (layer.fan_in, 1, 1)
        f, (kh, kw), (oh, ow), (ih, iw) = layer.output_shape[0], (h, w), (1, 1), (h, w)
    else:
        (c, ih, iw), (f, oh, ow), (kh, kw) = layer.input_shape, layer.output_shape, layer.kernel
    need = LayerNeed(name, c * 2 ** (_ceil_log2(kh * kw) + _ceil_log2(f)), f * 2 ** (_ceil_log2(oh) + _ceil_log2(ow)), f)
    limits = [(max(c, f) > MAX_CHANNELS, f"{max(c, f):,} channels, more than {MAX_CHANNELS:,}"),
              (max(kh, kw) > MAX_KERNEL, f"a {kh}x{kw} kernel, larger than {MAX_KERNEL}x{MAX_KERNEL}"),
              (max(ih, iw) > MAX_INPUT_MAP, f"a {ih}x{iw} input map, larger than {MAX_INPUT_MAP}x{MAX_INPUT_MAP}"),
              (max(oh, ow) > MAX_OUTPUT_MAP, f"a {oh}x{ow} output map, larger than {MAX_OUTPUT_MAP}x{MAX_OUTPUT_MAP}")]
    over = next((why for broken, why in limits if broken), None)
    if over is None and not any(core.holds(need) for core in CORES):
        over = (f"{need.kernel:,} kernel and {need.neurons:,} neuron entries, which no core holds "
                f"(the largest hold {64 * KI:,} kernel or {64 * KI:,} neuron entries)")
    return replace(need, over=over)


def _unflattened(layer: HardwareLayer, before: list[HardwareLayer]) -> tuple[int, int, int] | None:
    """The ``(C, H, W)`` a linear layer's input had before flattening: the last LIF layer before
    it in its part, average-pooled by the factor that gives its inputs (None: none does)."""
    maps = [b.output_shape for b in before if b.kind == "lif" and len(b.output_shape) == 3]
    if not maps or len(layer.input_shape) != 1:
        return None
    c, h, w = maps[-1]
    for k in range(1, max(h, w) + 1):
        if c * (h // k) * (w // k) == layer.fan_in:
            return c, h // k, w // k
    return None


def place(needs: list[LayerNeed], cores: tuple[Core, ...] = CORES) -> list[int] | None:
    """A core per layer, none shared, each holding its layer (augmenting paths, as sinabs's
    bipartite matching); None when there is no such placement."""
    owner: list[int | None] = [None] * len(cores)

    def seat(i: int, tried: set[int]) -> bool:
        for c, core in enumerate(cores):
            if c not in tried and core.holds(needs[i]):
                tried.add(c)
                if owner[c] is None or seat(owner[c], tried):
                    owner[c] = i
                    return True
        return False

    if len(needs) > len(cores) or not all(seat(i, set()) for i in range(len(needs))):
        return None
    placement = [0] * len(needs)
    for c, i in enumerate(owner):
        if i is not None:
            placement[i] = c
    return placement


@dataclass(frozen=True)
class ChipReport(MemoryReport):
    """A :class:`MemoryReport` with each layer's entries and core (None: not placed)."""

    cores: tuple[tuple[LayerNeed, int | None], ...] = ()

    def format(self) -> str:
        rows = [f"{'chip layer':<40}{'kernel entries':>16}{'neuron entries':>16}{'core':>6}"]
        rows += [f"{need.name:<40}{need.kernel:>16,}{need.neurons:>16,}{'-' if core is None else core:>6}"
                 for need, core in self.cores]
        return MemoryReport.format(self) + "\n" + "\n".join(rows)


class ChipMemory:
    """The ``speck`` cost model (see the module docstring). ``weight_bits`` is the chip's, so a
    search records 8-bit weights and ``fit`` trains them."""

    weight_bits = 8

    def __init__(self, name: str = "speck") -> None:
        self.name = name

    def __call__(self, profile: NetworkProfile) -> ChipReport:
        needs, costs = [], []
        for part in profile.layers:
            part_needs = [_need(part.name, layer, part.hardware[:i]) for i, layer in enumerate(part.hardware)
                          if layer.kind != "lif"]
            needs += part_needs
            costs.append(LayerCost(part.name, part.params, part.neurons, WEIGHT_BYTES * sum(n.kernel for n in part_needs),
                                   STATE_BYTES * sum(n.neurons for n in part_needs)))
        param_bytes, state_bytes = sum(c.param_bytes for c in costs), sum(c.state_bytes for c in costs)
        refusal = next((f"layer {n.name} needs {n.over}" for n in needs if n.over is not None), None)
        placement = None
        if refusal is None and len(needs) > len(CORES):
            refusal = f"{len(needs)} layers, more than the chip's {len(CORES)} cores"
        elif refusal is None:
            placement = place(needs)
            if placement is None:
                refusal = f"no core for each of its {len(needs)} layers: " + ", ".join(
                    f"{n.name} ({n.kernel:,} kernel, {n.neurons:,} neuron entries)" for n in needs)
        cores = tuple(zip(needs, placement or [None] * len(needs)))
        return ChipReport(self.name, param_bytes + state_bytes, param_bytes, state_bytes, tuple(costs), refusal, cores)


@functools.lru_cache(maxsize=4096)
def _need(part: str, layer: HardwareLayer, before: tuple[HardwareLayer, ...]) -> LayerNeed:
    return layer_need(f"{part}.{layer.name}", layer, _unflattened(layer, list(before)) if layer.kind == "linear" else None)


@hookimpl(tryfirst=True)  # built-ins first: a third party that reuses a name is the one named
def spikenas_register_cost_models(registry) -> None:
    registry.add("speck", ChipMemory)
