"""What a target runs at the shapes a search gives it, known before the search starts.

:func:`restrict_space` limits a search space to the networks a target exports: it tries every
operation at every cell's ``(C, H, W)`` (:meth:`~spikenas.space.macro.MacroConfig.cell_shape`)
and the stem, the reductions and the head at theirs, for every macro the search may choose
(:func:`~spikenas.space.config.macro_options`). Each part is built once on PyTorch's ``meta``
device (no weights) and checked by :meth:`~spikenas.export.targets.Target.check_layers`, the
method the export runs before building a chain, so no NIR is built and the two never disagree:
a network the search returns for a target exports for it.

An operation that fails at one shape is left out of the space; a macro knob value (a width, a
hidden size, a head pooling) is left out when every macro with it has a part the target cannot
express; a macro that fails while its knob values also appear in macros that do not is a
one-line error naming the part.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from spikenas.base.errors import SpikenasError
from spikenas.export.graph import ExportError, Shape
from spikenas.export.targets import Target, get_target
from spikenas.network.parts import Head, Stem, build_reduction
from spikenas.neuron import NeuronConfig
from spikenas.plugin.registry import OperationRegistry
from spikenas.space.config import SearchSpaceConfig, macro_options
from spikenas.space.macro import MacroConfig

KNOBS = ("channels", "head_hidden", "head_pool")


def fixed_refusal(spec: Target, macro: MacroConfig, cells: int, neuron: NeuronConfig) -> str | None:
    """Why ``spec`` cannot export the stem, a reduction or the head of a ``cells``-cell network
    of ``macro`` (chains checked as :func:`~spikenas.export.from_network.network_to_nir` checks
    them, at their real shapes), or None where it can."""
    with torch.device("meta"):
        stem, head = Stem(macro), Head(macro, cells, neuron)
        reductions = [build_reduction(macro, i, neuron) for i in range(cells - 1)]
    chains = [("stem", stem, macro.input_shape)]
    chains += [(f"reduction{i}", r, macro.cell_shape(i)) for i, r in enumerate(reductions)]
    try:
        for prefix, chain, shape in chains:
            spec.check_layers(list(chain), tuple(shape), prefix)
        shape = spec.check_layers(list(head.features), macro.cell_shape(cells - 1), "head")
        spec.check_layers(list(head.classifier), shape, "classifier")
    except ExportError as exc:
        return str(exc)
    return None


def _shaped_macros(base: MacroConfig, space: SearchSpaceConfig) -> list[MacroConfig]:
    """The macros a search may choose: every knob combination whose shapes hold ``space.cells``
    cells (the others are skipped by the search too)."""
    shaped = []
    for macro in macro_options(base, space):
        try:
            macro.head_features(space.cells)
        except SpikenasError:
            continue
        shaped.append(macro)
    return shaped


def _restrict_macros(space: SearchSpaceConfig, base: MacroConfig, spec: Target, neuron: NeuronConfig
                     ) -> tuple[SearchSpaceConfig, list[MacroConfig], list[str]]:
    """``space`` without the knob values whose every macro has a part ``spec`` cannot export;
    the macros left and a line per value left out."""
    macros = _shaped_macros(base, space)
    refusals = {m: fixed_refusal(spec, m, space.cells, neuron) for m in macros}
    failing = [m for m in macros if refusals[m] is not None]
    if not failing:
        return space, macros, []
    notes, changes = [], {}
    for knob in KNOBS:
        values = sorted({getattr(m, knob) for m in macros}, reverse=True)
        dropped = [v for v in values if all(refusals[m] is not None for m in macros if getattr(m, knob) == v)]
        if dropped and len(dropped) < len(values):
            changes[knob] = [v for v in values if v not in dropped]
            reason = refusals[next(m for m in macros if getattr(m, knob) == dropped[0])]
            notes.append(f"target {spec.name} cannot run the macro's {knob} {dropped} ({reason}): left out")
    space = dataclasses.replace(space, **changes)
    macros = [m for m in macros if all(getattr(m, k) in v for k, v in changes.items())]
    for macro in macros:
        if refusals[macro] is not None:
            raise ExportError(f"target {spec.name} cannot run the network of macro channels={macro.channels}, "
                              f"head_hidden={macro.head_hidden}, head_pool={macro.head_pool} ({refusals[macro]})")
    return space, macros, notes


def _cell_shapes(macros: list[MacroConfig], cells: int) -> list[tuple[int, Shape]]:
    """Every ``(cell index, (C, H, W))`` a cell of these macros has, each shape once."""
    seen: dict[Shape, int] = {}
    for macro in macros:
        for i in range(cells):
            seen.setdefault(macro.cell_shape(i), i)
    return [(i, shape) for shape, i in seen.items()]


def _build(operations: OperationRegistry, name: str, channels: int, neuron: NeuronConfig) -> nn.Module:
    """Operation ``name`` at ``channels`` on the ``meta`` device; one that fails to build there
    is a one-line error naming it and its plugin."""
    entry = operations.entry(name)
    try:
        with torch.device("meta"):
            return entry.item.build(channels, neuron)
    except Exception as exc:
        raise SpikenasError(f"operation {name!r} (plugin {entry.plugin!r}) failed to build at {channels} channels: "
                            f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None


def restrict_space(space: SearchSpaceConfig, target: str, neuron: NeuronConfig, operations: OperationRegistry,
                   macro: MacroConfig) -> tuple[SearchSpaceConfig, list[str]]:
    """``space`` (around the base ``macro``) limited to what ``target`` exports, from what it
    declares (:meth:`Target.check_layers`, no NIR built): backward edges off unless it runs
    them; the macro knob values whose stem, reductions or head it cannot express left out; and
    only the operations it can express at every cell shape of every macro left (each built
    once per width on the ``meta`` device from the ``operations`` registry). Returns the space
    and a line per change; a target that runs no macro or no operation is a one-line error."""
    spec = get_target(target)
    spec.check_neuron(f"neuron (target {spec.name})", neuron)
    notes = []
    if space.backward and not spec.recurrent:
        notes.append(f"target {spec.name} runs no backward edges: searching forward edges only")
        space = dataclasses.replace(space, backward=False)
    if not _shaped_macros(macro, space):
        return space, notes  # no network at all: the search says why, naming the knob
    space, macros, macro_notes = _restrict_macros(space, macro, spec, neuron)
    notes += macro_notes
    shapes = _cell_shapes(macros, space.cells)
    built = NeuronConfig(**{**dataclasses.asdict(neuron), "learn_tau": False})
    kept = []
    for name in space.operations:
        refusal = None
        modules: dict[int, nn.Module] = {}
        for index, shape in shapes:
            if shape[0] not in modules:
                modules[shape[0]] = _build(operations, name, shape[0], built)
            refusal = spec.operation_refusal(modules[shape[0]], name, shape)
            if refusal is not None:
                notes.append(f"target {spec.name} cannot run operation {name!r} at cell {index}'s [C, H, W] = "
                             f"{list(shape)} ({refusal}): left out")
                break
        if refusal is None:
            kept.append(name)
    if not kept or kept == ["zero"]:
        raise ExportError(f"target {spec.name} runs none of the operations {space.operations}")
    return dataclasses.replace(space, operations=kept), notes
