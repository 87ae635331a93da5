"""Parameter and neuron counts of a network from genotype + macro, without allocating weights.

Each distinct part (an operation at a channel width and feature-map size, the stem, a
reduction, the head) is built once on PyTorch's ``meta`` device, where tensors have shapes but
no storage, and its parameters and LIF neurons are counted; the counts are cached, so costing a
genotype is a handful of dictionary look-ups. Because the counts come from the very modules the
network builds, they equal the built network's parameters exactly, for plugin operations too.
"""

from __future__ import annotations

import functools
import os
from typing import Callable

import torch
from torch import nn

from spikenas.cost import HardwareLayer, LayerProfile, NetworkProfile
from spikenas.base.units import format_bytes
from spikenas.base.errors import SpikenasError
from spikenas.cost.hardware import trace_layers
from spikenas.network.parts import Head, Stem, build_reduction
from spikenas.neuron import NeuronConfig
from spikenas.plugin.registry import OperationRegistry
from spikenas.space.cell import live_edges
from spikenas.space.genotype import CellGenotype, Genotype
from spikenas.space.macro import MacroConfig


class ShapeContractError(SpikenasError):
    """A cell operation whose output shape is not its input's."""


def count_module(build: Callable[[], nn.Module], input_shape: tuple[int, ...] | None,
                 keep_shape: bool = False) -> tuple[int, int, tuple[HardwareLayer, ...]]:
    """``(parameters, LIF neurons per sample, hardware layers)`` of the module ``build()`` makes.

    The module is built on the meta device and run once on a meta input of ``input_shape``
    (``[1, c, H, W]`` for a stem, ``[T=1, B=1, C, H, W]`` for the other parts) to find its
    ``Conv2d``, ``Linear`` and LIF layers (:func:`~spikenas.cost.hardware.trace_layers`); with
    ``input_shape`` None it is not run (no neurons, no hardware layers). With ``keep_shape``
    an output of another shape than the input is a :class:`ShapeContractError`.
    """
    try:
        with torch.device("meta"):
            module = build()
    except RuntimeError as exc:
        if "overflow" not in str(exc):
            raise
        raise SpikenasError(f"a layer is too large to exist (its size overflows): {str(exc).splitlines()[0]}") from None
    params = sum(p.numel() for p in module.parameters())
    if input_shape is None:
        return params, 0, ()
    hardware, output = trace_layers(module, torch.empty(input_shape, device="meta"))
    if keep_shape and tuple(getattr(output, "shape", ())) != tuple(input_shape):
        found = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ShapeContractError(f"turns a [T, B, C, H, W] = {list(input_shape)} input into {found}; an operation must keep the shape")
    return params, sum(layer.neurons for layer in hardware), tuple(hardware)


@functools.lru_cache(maxsize=4096)
def _count_operation(build: Callable[..., nn.Module], shape: tuple[int, int, int], neuron: NeuronConfig) -> tuple[int, int, tuple[HardwareLayer, ...]]:
    """Counts of an operation (keyed by its build function) at ``shape = (C, H, W)``, after the
    shape contract is also checked on a real tiny tensor (an operation could keep its shape on
    the meta device alone)."""
    counts = count_module(lambda: build(shape[0], neuron), (1, 1, *shape), keep_shape=True)
    tiny = (min(shape[0], 4), min(shape[1], 8), min(shape[2], 8))
    with torch.no_grad():
        output = build(tiny[0], neuron).eval()(torch.rand(1, 1, *tiny))
    if tuple(getattr(output, "shape", ())) != (1, 1, *tiny):
        found = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ShapeContractError(f"keeps the shape on the meta device but turns a real [T, B, C, H, W] = {[1, 1, *tiny]} "
                                 f"input into {found}; an operation must keep the shape")
    return counts


def machine_memory_bytes() -> int:
    """Physical memory of this machine, in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def activation_bytes(neurons: int, timesteps: int, images: int, training: bool) -> int:
    """Bytes the activations of ``neurons`` LIF neurons take over ``timesteps`` steps and
    ``images`` images at float32: about 10 float32 values per neuron and step while training
    (autograd keeps the inputs, currents, membranes and spikes of every layer; measured 9-10x on
    a 2-cell network of this space), 3 without gradients (one layer's input, membrane, spikes)."""
    return 4 * neurons * timesteps * images * (10 if training else 3)


def check_fits_in_memory(params: int, what: str, activations: int = 0) -> None:
    """Refuse, before anything is allocated, a network whose float32 parameters and
    ``activations`` (bytes, :func:`activation_bytes`) exceed this machine's memory (``what``
    names the network and the setting to change)."""
    need, have = 4 * params + activations, machine_memory_bytes()
    if need > have:
        moving = f" and {format_bytes(activations)} of activations" if activations else ""
        raise SpikenasError(
            f"{what} needs {format_bytes(need)} ({params:,} float32 parameters{moving}), more than this machine's "
            f"{format_bytes(have)} of memory"
        )


class Profiler:
    """Counts for the networks of one macro and neuron configuration.

    ``profile(genotype)`` gives the per-layer :class:`NetworkProfile`; ``cell_counts(cell, i)``
    and ``fixed_counts(cells)`` give the totals the search needs per candidate.
    """

    def __init__(self, macro: MacroConfig, neuron: NeuronConfig, operations: OperationRegistry) -> None:
        self.macro = macro
        self.neuron = neuron
        self.operations = operations
        self._op = functools.lru_cache(maxsize=None)(self._count_op)
        self._fixed = functools.lru_cache(maxsize=None)(self._fixed_layers)

    def _count_op(self, op: str, shape: tuple[int, int, int]) -> tuple[int, int, tuple[HardwareLayer, ...]]:
        """An operation's counts; the first time it is met at a shape it is checked to keep the
        shape, and an operation that fails is a one-line error naming it and its plugin."""
        entry = self.operations.entry(op)
        try:
            return _count_operation(entry.item.build, shape, self.neuron)
        except ShapeContractError as exc:
            raise SpikenasError(f"operation {op!r} (plugin {entry.plugin!r}) {exc}") from None
        except SpikenasError:
            raise
        except Exception as exc:  # a plugin's build or forward that raises
            raise SpikenasError(f"operation {op!r} (plugin {entry.plugin!r}) failed on a [T, B, C, H, W] = "
                                f"{[1, 1, *shape]} input: {type(exc).__name__}: {' '.join(str(exc).split())}") from None

    def cell_layers(self, cell: CellGenotype, index: int) -> list[LayerProfile]:
        shape = self.macro.cell_shape(index)
        layers = []
        for edge in live_edges(cell, self.operations):
            layers.append(LayerProfile(f"cell{index}.{edge}", *self._op(edge.op, shape)))
        return layers

    def cell_counts(self, cell: CellGenotype, index: int) -> tuple[int, int]:
        """``(params, neurons)`` of cell ``index`` with genotype ``cell``."""
        shape = self.macro.cell_shape(index)
        params = neurons = 0
        for edge in live_edges(cell, self.operations):
            p, n, _ = self._op(edge.op, shape)
            params += p
            neurons += n
        return params, neurons

    def _fixed_layers(self, cells: int) -> tuple[tuple[int, LayerProfile], ...]:
        m, neuron = self.macro, self.neuron
        layers = [(0, LayerProfile("stem", *count_module(lambda: Stem(m), (1, *m.input_shape))))]
        for i in range(cells - 1):
            shape = (1, 1, *m.cell_shape(i))
            counts = count_module(lambda i=i: build_reduction(m, i, neuron), shape)
            layers.append((i + 1, LayerProfile(f"reduction{i}", *counts)))
        head_in = (1, 1, *m.cell_shape(cells - 1))
        layers.append((cells, LayerProfile("head", *count_module(lambda: Head(m, cells, neuron), head_in))))
        return tuple(layers)

    def fixed_counts(self, cells: int) -> tuple[int, int]:
        """``(params, neurons)`` of everything but the cells, for a network of ``cells`` cells."""
        layers = [layer for _, layer in self._fixed(cells)]
        return sum(l.params for l in layers), sum(l.neurons for l in layers)

    def profile(self, genotype: Genotype) -> NetworkProfile:
        """Per-layer counts in network order: stem, cell 0, reduction 0, ..., head."""
        fixed = self._fixed(len(genotype.cells))
        layers: list[LayerProfile] = []
        for position, layer in fixed:
            if position > 0:
                layers.extend(self.cell_layers(genotype.cells[position - 1], position - 1))
            layers.append(layer)
        return NetworkProfile(tuple(layers))
