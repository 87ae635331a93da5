"""Run a NIR file that spikenas wrote, by the conventions of the target it was written for.

:func:`load_nir` builds a :class:`NIRModule` that runs one NIR step per call over a batch:
every node sums its incoming edges, ``Delay`` nodes return what they received one step
before (zeros at the first step), ``LIF`` nodes integrate NIR's
``tau dv/dt = (v_leak - v) + r I`` by forward Euler with step ``dt``, spike where
``v > v_threshold`` and reset to ``v_reset`` (0 where the file has none), starting from
``v = 0``. The other toolchains run their own targets' files with their own importers
(:mod:`spikenas.export.consumers`); this one runs what no single toolchain runs whole (the
one-step ``Delay`` of backward edges), independently of the nir and nirtorch versions installed.

The file's ``metadata['target']`` (:mod:`spikenas.export.targets`) says how to read it, as
that target's reader does: ``nir`` with the file's ``dt`` (or the one given); ``snntorch`` and
``norse`` with their importers' fixed ``dt`` (1e-4 s, 1e-3 s; norse's rate is ``dt * (1 / tau)``),
a reset to 0 (their importers ignore ``v_reset``), no ``Delay``, and the nodes run in the order
their executor runs them (:func:`execution_order`): an edge from a node that runs later than its
reader delivers the value of the step before (nothing at the first step), as both executors do
with the backward edges spikenas writes as cycles. A ``sinabs`` or ``speck`` file (sinabs's own
LIF and IAF, several spikes per step, which the file does not describe), an unknown target, and
a file with no target that spikenas did not write are refused in one line.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Callable, Union

import nir
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikenas.base.errors import SpikenasError
from spikenas.export.graph import ExportError, Graph
from spikenas.export.targets import DIRECT_ENCODING, TARGETS, Target

# the rate per step (dt / tau) a LIF integrates at, as each target's reader computes it from
# the file's float32 tau; targets missing here are refused
RATES: dict[str, Callable[[float, torch.Tensor], torch.Tensor]] = {
    "nir": lambda dt, tau: dt / tau,
    "snntorch": lambda dt, tau: dt / tau,
    "norse": lambda dt, tau: dt * (1 / tau),  # norse's tau_mem_inv = 1 / tau, times dt
}


def _tensor(value) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value), dtype=torch.float32)


def _pair(value) -> tuple[int, int]:
    flat = np.atleast_1d(np.asarray(value)).astype(int)
    return (int(flat[0]), int(flat[-1]))


class NIRModule(nn.Module):
    """One step of a NIR graph read by ``target``'s conventions (one of :data:`RATES`):
    ``forward(x [B, ...], state) -> (output [B, ...], state)``; ``state`` None starts every
    neuron at rest and every delay empty."""

    def __init__(self, graph: nir.NIRGraph, dt: float, target: Target) -> None:
        super().__init__()
        self.graph, self.dt, self.target = graph, dt, target
        g = Graph()
        g.nodes, g.edges = dict(graph.nodes), list(graph.edges)
        self.delays = {n for n, node in graph.nodes.items() if isinstance(node, nir.Delay)}
        if self.delays and target.feedback != "delay":
            raise ExportError(f"NIR node {sorted(self.delays)[0]!r}: a Delay, which target {target.name}'s reader does not run")
        self.late: set[tuple[str, str]] = set()  # edges delivered one step later
        if target.feedback == "cycle":
            self.order, self.late = execution_order(graph, target.order)
        else:
            self.order = g.topological(ignore=[(a, b) for a, b in graph.edges if a in self.delays])
        self.sources = {n: [a for a, b in graph.edges if b == n] for n in graph.nodes}
        self.layers = nn.ModuleDict()
        for name, node in graph.nodes.items():
            if isinstance(node, nir.Conv2d):
                if int(np.asarray(node.groups)) != 1:
                    raise ExportError(f"NIR node {name!r}: grouped convolutions are not run")
                weight = _tensor(node.weight)
                layer = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], stride=_pair(node.stride),
                                  padding=_pair(node.padding), dilation=_pair(node.dilation))
                layer.weight.data, layer.bias.data = weight, _tensor(node.bias)
            elif isinstance(node, nir.Affine):
                weight = _tensor(node.weight)
                layer = nn.Linear(weight.shape[1], weight.shape[0])
                layer.weight.data, layer.bias.data = weight, _tensor(node.bias)
            elif isinstance(node, nir.Linear):
                layer = nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=False)
                layer.weight.data = _tensor(node.weight)
            elif isinstance(node, nir.Flatten):  # NIR's dimensions exclude the batch
                layer = nn.Flatten(node.start_dim + (node.start_dim >= 0), node.end_dim + (node.end_dim >= 0))
            else:
                continue
            self.layers[name] = layer
        for name, node in graph.nodes.items():
            if not isinstance(node, (nir.Input, nir.Output, nir.Delay, nir.LIF, nir.SumPool2d)) and name not in self.layers:
                raise ExportError(f"NIR node {name!r} of type {type(node).__name__} is not run by spikenas's reader")

    def _lif(self, node: nir.LIF, current: torch.Tensor, v: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        v = torch.zeros_like(current) if v is None else v
        rate = RATES[self.target.name](self.dt, _tensor(node.tau))
        v = v + rate * (_tensor(node.v_leak) - v + _tensor(node.r) * current)
        spikes = (v > _tensor(node.v_threshold)).to(current.dtype)
        v_reset = _tensor(getattr(node, "v_reset", 0.0) if self.target.keeps_v_reset else 0.0)
        return spikes, torch.where(spikes.bool(), v_reset.expand_as(v), v)

    def forward(self, x: torch.Tensor, state: dict | None = None) -> tuple[torch.Tensor, dict]:
        state = dict(state or {})
        values = {name: state.get(name, torch.zeros(())) for name in self.delays}  # what arrived one step ago
        for name in self.order:
            node = self.graph.nodes[name]
            if isinstance(node, nir.Input):
                values[name] = x
                continue
            if name in self.delays:
                continue
            inputs = [values[s] if (s, name) not in self.late else state.get(("output", s)) for s in self.sources[name]]
            inputs = [value for value in inputs if value is not None]  # a late edge delivers nothing at the first step
            if not inputs:
                raise ExportError(f"NIR node {name!r} has no input")
            total = inputs[0] if len(inputs) == 1 else torch.stack(torch.broadcast_tensors(*inputs)).sum(0)
            if isinstance(node, nir.LIF):
                values[name], state[name] = self._lif(node, total, state.get(name))
            elif isinstance(node, nir.SumPool2d):
                values[name] = F.avg_pool2d(total, _pair(node.kernel_size), _pair(node.stride), _pair(node.padding),
                                            count_include_pad=True, divisor_override=1)
            elif name in self.layers:
                values[name] = self.layers[name](total)
            else:
                values[name] = total
        for name in self.delays:
            state[name] = sum(values[s] for s in self.sources[name])
        for source, _ in self.late:
            state["output", source] = values[source]
        outputs = [values[n] for n, node in self.graph.nodes.items() if isinstance(node, nir.Output)]
        if len(outputs) != 1:
            raise ExportError(f"the NIR graph has {len(outputs)} Output nodes; spikenas's reader runs graphs with one")
        return outputs[0], state


def execution_order(graph: nir.NIRGraph, order: str) -> tuple[list[str], set[tuple[str, str]]]:
    """The order nirtorch runs ``graph``'s nodes in for a target of node ``order``
    (:class:`~spikenas.export.targets.Target`), and the edges it delivers one step late.

    ``names``: ``nir_to_torch`` (snnTorch) takes the nodes in the order ``nir.read`` returns
    them, alphabetical, and defers a node until its inputs have run, except, where it has more
    than one input, an input from a node that comes later and that it reaches through the graph
    (a cycle): that one is the value of the step before. ``spine``: ``GraphExecutor`` (norse) runs the nodes depth-first in
    pre-order from the ``Input`` node along each node's edges as listed, and an input from a node
    that runs later is its value of the step before. A node that it never runs is an
    :class:`ExportError`, as is a cycle without a late edge."""
    g = Graph()
    g.nodes, g.edges = dict(graph.nodes), list(graph.edges)
    if order == "names":
        position = {n: i for i, n in enumerate(sorted(graph.nodes))}
        late = {(a, b) for a, b in graph.edges if position[a] >= position[b] and len(g.inputs(b)) > 1 and g.reaches(b, a)}
        return g.topological(ignore=late), late
    ran, stack = [], [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)][:1]
    while stack:
        name = stack.pop()
        if name not in ran:
            ran.append(name)
            stack.extend(reversed([b for a, b in graph.edges if a == name and b not in ran]))
    missing = sorted(set(graph.nodes) - set(ran))
    if missing:
        raise ExportError(f"NIR node {missing[0]!r} is not reached from the Input node, so nirtorch's executor never runs it")
    position = {n: i for i, n in enumerate(ran)}
    return ran, {(a, b) for a, b in graph.edges if position[a] >= position[b]}


def _read(path: Union[str, Path]) -> nir.NIRGraph:
    """``nir.read`` without nir's type inference (a sinabs file's per-channel parameters fail
    it before its target can be read), any failure one line naming the file."""
    unchecked = {"type_check": False} if "type_check" in inspect.signature(nir.read).parameters else {}  # nir <= 1.0.4: none
    try:
        return nir.read(path, **unchecked)
    except Exception as exc:  # noqa: BLE001 (h5py, nir and numpy raise many kinds on a damaged file)
        raise SpikenasError(f"cannot read NIR file {str(path)!r}: {_first_line(exc)}") from None


def file_target(graph: nir.NIRGraph, where: str) -> Target:
    """The target whose conventions ``graph`` (``where``, for messages) follows: its
    ``metadata['target']``, ``nir`` for a file spikenas wrote before targets existed; a
    one-line error for a target spikenas's reader does not run, or none."""
    runnable = ", ".join(RATES)
    name = graph.metadata.get("target")
    if name is None and graph.metadata.get("encoding") == DIRECT_ENCODING:
        name = "nir"
    if name is None:
        raise SpikenasError(f"{where} names no target in its metadata and is not a file spikenas wrote: its conventions "
                            f"(LIF tau, dt, reset) are unknown; spikenas's reader runs files written for {runnable}")
    if not isinstance(name, str) or name not in TARGETS:
        raise SpikenasError(f"{where} was written for unknown target {str(name)[:40]!r}; spikenas's reader runs files "
                            f"written for {runnable}")
    if name not in RATES:
        raise SpikenasError(f"{where} was written for target {name} ({TARGETS[name].reader}), whose neurons spikenas's "
                            f"reader does not run: run it there; spikenas's reader runs files written for {runnable}")
    return TARGETS[name]


def load_nir(graph: Union[nir.NIRGraph, str, Path], dt: float | None = None) -> NIRModule:
    """The :class:`NIRModule` of ``graph`` (or a ``.nir`` file), read by the conventions of
    its ``metadata['target']`` (:func:`file_target`). ``dt``: seconds per step, for ``nir``
    files (default: the graph's ``metadata['dt']``); a target whose reader fixes it refuses
    another. Every refusal is one :class:`SpikenasError` line. Call the module as
    ``logits, state = module(image, state)`` once per step."""
    where = "the NIR graph"
    if not isinstance(graph, nir.NIRGraph):
        graph, where = _read(graph), f"NIR file {str(graph)!r}"
    target = file_target(graph, where)
    if target.dt is not None:
        if dt is not None and dt != target.dt:
            raise SpikenasError(f"{where} is for {target.reader}, which runs every step as {target.dt} s; "
                                f"got dt={dt}")
        return _module(graph, target.dt, target, where)
    step = dt if dt is not None else graph.metadata.get("dt")
    try:
        seconds = float(step)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise SpikenasError(f"{where}: dt {step!r} is not a number of seconds > 0 (give load_nir's dt)")
    return _module(graph, seconds, target, where)


def _module(graph: nir.NIRGraph, dt: float, target: Target, where: str) -> NIRModule:
    """:class:`NIRModule` of ``graph``; a graph whose nodes are damaged is one line naming ``where``."""
    try:
        return NIRModule(graph, dt, target)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 (nir and numpy raise many kinds on damaged node parameters)
        raise ExportError(f"{where} cannot be read: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def run_nir(module: nn.Module, images: torch.Tensor, timesteps: int) -> torch.Tensor:
    """``[B, c, H, W]`` images fed ``timesteps`` times to a :func:`load_nir` module: ``[T, B, classes]`` logits."""
    state, outputs = None, []
    try:
        with torch.no_grad():
            for _ in range(timesteps):
                logits, state = module(images, state)
                outputs.append(logits)
        return torch.stack(outputs)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 (a graph whose shapes or values do not fit together)
        raise ExportError(f"the NIR graph does not run on [{', '.join(map(str, images.shape))}] images: {_first_line(exc)}") from None
