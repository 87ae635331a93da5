"""Run a NIR graph written by :func:`~spikenas.export.network_to_nir` with nirtorch's executor.

:func:`load_nir` maps every node to a torch module (norse's box-LIF cell for ``LIF``) and hands
the graph to ``nirtorch.nir_to_torch``, which runs one step per call with explicit state;
:func:`run_nir` feeds the image ``T`` times and stacks the logits, ``[T, B, classes]``, which is
what ``SpikingNetwork.timestep_logits`` returns.

nirtorch has no ``Delay`` node: it gives a cycle one step of delay where it breaks it, at the
first node (in the order it is given) that sums an input not yet computed. So a ``Delay`` on a
cycle becomes an identity and the nodes are ordered so that nirtorch breaks every cycle exactly
at that ``Delay``'s output (the ``Delay`` itself becomes a ``Scale`` of ones); a ``Delay`` on no cycle becomes a one-step buffer. nirtorch can
only break a cycle at a node with two or more inputs: a graph whose recurrent edge is the only
input of its node (a backward edge into a cell node that no forward edge reaches) is refused
with an :class:`~spikenas.export.nir_graph.ExportError`; simulators that implement ``Delay``
run it as written.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path
from typing import Union

import nir
import numpy as np
import torch
from torch import nn

from spikenas.export.nir_graph import ExportError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", FutureWarning)
    import nirtorch
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState
    from norse.torch.module.lif_box import LIFBoxCell, LIFBoxParameters


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array), dtype=torch.float32)


class ScaledLIF(nn.Module):
    """``nir.LIF`` on norse's box-LIF cell: the input current is multiplied by ``r`` first and
    the membrane starts at 0.

    ``forward(x [B, ...], state) -> (spikes, state)``; one call is one step of ``dt`` seconds.
    """

    def __init__(self, node: nir.LIF, dt: float) -> None:
        super().__init__()
        self.register_buffer("r", _tensor(node.r))
        parameters = LIFBoxParameters(
            tau_mem_inv=1.0 / _tensor(node.tau), v_leak=_tensor(node.v_leak),
            v_th=_tensor(node.v_threshold), v_reset=_tensor(node.v_reset),
        )
        self.cell = LIFBoxCell(parameters, dt=dt)

    def forward(self, x: torch.Tensor, state=None):
        if state is None:  # from v = 0, as spikenas's neurons (norse's cell would start at v_leak)
            state = LIFBoxFeedForwardState(v=torch.zeros_like(x))
        return self.cell(self.r * x, state)


class Scale(nn.Module):
    def __init__(self, node: nir.Scale) -> None:
        super().__init__()
        self.register_buffer("scale", _tensor(node.scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x


class SumPool2d(nn.Module):
    """Window sums with zero padding (nirtorch's own ignores padding)."""

    def __init__(self, node: nir.SumPool2d) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = (tuple(int(v) for v in np.atleast_1d(a)) for a in (node.kernel_size, node.stride, node.padding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(x, self.kernel, self.stride, self.padding, count_include_pad=True, divisor_override=1)


class StepDelay(nn.Module):
    """One step of delay: returns the previous call's input (zeros at the first call)."""

    def forward(self, x: torch.Tensor, state=None):
        return (torch.zeros_like(x) if state is None else state), x


def _affine(node: nir.Affine) -> nn.Linear:
    module = nn.Linear(node.weight.shape[1], node.weight.shape[0])
    module.weight.data, module.bias.data = _tensor(node.weight), _tensor(node.bias)  # nirtorch's default drops the bias
    return module


def _flatten(node: nir.Flatten) -> nn.Flatten:
    end = node.end_dim if node.end_dim < 0 else node.end_dim + 1  # NIR's dims exclude the batch
    return nn.Flatten(start_dim=node.start_dim + 1, end_dim=end)


def _on_cycle(graph: nir.NIRGraph) -> set[str]:
    """Names of the nodes that lie on a cycle."""
    succ = defaultdict(set)
    for a, b in graph.edges:
        succ[a].add(b)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for n in succ[todo.pop()] - seen:
                if n == goal:
                    return True
                seen.add(n)
                todo.append(n)
        return False

    return {name for name in graph.nodes if reaches(name, name)}


def _ordered(nodes: dict[str, nir.NIRNode], edges: list[tuple[str, str]], cut: set[tuple[str, str]]) -> dict[str, nir.NIRNode]:
    """``nodes`` in a topological order of the edges not in ``cut``; the cut edges must close
    every cycle."""
    indegree = {name: 0 for name in nodes}
    succ = defaultdict(list)
    for a, b in edges:
        if (a, b) not in cut:
            indegree[b] += 1
            succ[a].append(b)
    ready = [n for n, d in indegree.items() if d == 0]
    order = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for b in succ[name]:
            indegree[b] -= 1
            if indegree[b] == 0:
                ready.append(b)
    if len(order) != len(nodes):
        raise ExportError("the NIR graph has a cycle without a Delay node: nirtorch would choose where it delays")
    return {name: nodes[name] for name in order}


def load_nir(graph: Union[nir.NIRGraph, str, Path], dt: float | None = None) -> torch.fx.GraphModule:
    """nirtorch's module for ``graph`` (or a ``.nir`` file); ``dt`` defaults to the graph's
    ``metadata['dt']``. Call it as ``logits, state = module(image, state)`` once per step."""
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.read(graph)
    dt = float(dt if dt is not None else graph.metadata.get("dt", 1e-3))
    cyclic = _on_cycle(graph)
    inputs = defaultdict(list)
    for a, b in graph.edges:
        inputs[b].append(a)
    cut, nodes = set(), dict(graph.nodes)
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.Delay):
            continue
        if not np.allclose(node.delay, dt):
            raise ExportError(f"NIR node {name!r}: a delay of {np.unique(node.delay)} s is not one step of {dt} s")
        if name not in cyclic:
            continue  # a one-step buffer (StepDelay)
        nodes[name] = nir.Scale(scale=np.ones_like(node.delay))  # nirtorch delays the cycle itself, here:
        for a, b in graph.edges:
            if a == name:
                if len(inputs[b]) < 2:
                    raise ExportError(
                        f"NIR node {b!r}: its only input is the recurrent edge from {name!r}; nirtorch's executor "
                        "can only delay a cycle at a node that sums two or more inputs (run it on a simulator that implements nir.Delay)"
                    )
                cut.add((a, b))
    graph = nir.NIRGraph(nodes=_ordered(nodes, graph.edges, cut), edges=graph.edges, metadata=graph.metadata)
    node_map = {
        nir.LIF: lambda node: ScaledLIF(node, dt),
        nir.Scale: Scale,
        nir.SumPool2d: SumPool2d,
        nir.Affine: _affine,
        nir.Flatten: _flatten,
        nir.Delay: lambda node: StepDelay(),
    }
    return nirtorch.nir_to_torch(graph, node_map)


def run_nir(module: torch.fx.GraphModule, images: torch.Tensor, timesteps: int) -> torch.Tensor:
    """``[B, c, H, W]`` images fed ``timesteps`` times to a :func:`load_nir` module: ``[T, B, classes]`` logits."""
    state, outputs = None, []
    with torch.no_grad():
        for _ in range(timesteps):
            logits, state = module(images, state)
            outputs.append(logits)
    return torch.stack(outputs)
