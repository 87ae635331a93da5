"""The spiking network built from (genotype, macro, operation registry): a plain ``nn.Module``.

``SpikingNetwork(genotype, macro)(images [B, c, H, W]) -> logits [B, classes]`` (averaged over
``T``); :meth:`SpikingNetwork.timestep_logits` gives ``[T, B, classes]``. The network runs on any
device and trains with surrogate gradients. With ``seed`` set, every part (stem, each cell
edge, each reduction, head) is initialised from its own seed derived from ``seed`` and the
part's name, so the same edge gets the same weights in every network that contains it: the
search relies on this to score a cell alone and the whole network consistently.
"""

from __future__ import annotations

import hashlib
from typing import Callable, TypeVar

import torch
from torch import nn

from spikenas.network.parts import Head, Stem, build_reduction
from spikenas.neuron import NeuronConfig
from spikenas.plugin import get_registries
from spikenas.plugin.registry import OperationRegistry
from spikenas.space.cell import live_edges, validate_genotype
from spikenas.space.genotype import CellGenotype, Edge, Genotype
from spikenas.space.macro import MacroConfig

M = TypeVar("M", bound=nn.Module)


def part_seed(seed: int, name: str) -> int:
    """A 63-bit seed for the part called ``name`` (stable across processes and machines)."""
    digest = hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def seeded(seed: int | None, name: str, build: Callable[[], M]) -> M:
    """``build()`` under the part seed for ``name`` (plain ``build()`` when ``seed`` is None)."""
    if seed is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        # the CPU generator only: torch.manual_seed would also queue lazy CUDA/XPU seeding,
        # which records a stack trace per call (a third of a small candidate's build time)
        torch.random.default_generator.manual_seed(part_seed(seed, name))
        return build()


class CellModule(nn.Module):
    """One cell: ``[T, B, C, H, W] -> [T, B, C, H, W]`` (the output node's value).

    Node 0 is the input; node ``j`` is the sum of its live incoming edges. A cell without
    backward edges runs every edge over the whole sequence at once; a cell with backward edges
    runs step by step, as SNASNet's ``Neuronal_Cell_backward`` does: at step ``t`` every node is
    computed from its forward edges plus what its backward edges delivered at the end of step
    ``t - 1`` (nothing at ``t = 0``); then every backward edge ``k -> j`` applies its operation to
    node ``k``'s step-``t`` value and holds the result for node ``j`` at ``t + 1``. Node 0's value
    is the input frame plus its backward edges (SNASNet's feedback into the cell input). ``build_op(edge)`` overrides how an edge's
    module is made (the search passes cached modules).
    """

    def __init__(
        self,
        cell: CellGenotype,
        channels: int,
        neuron: NeuronConfig,
        operations: OperationRegistry,
        seed: int | None = None,
        name: str = "cell",
        build_op: Callable[[Edge], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.nodes = cell.nodes
        self.edges: tuple[Edge, ...] = live_edges(cell, operations)
        self.recurrent = any(e.backward for e in self.edges)
        if build_op is None:
            def build_op(e: Edge) -> nn.Module:
                return seeded(seed, f"{name}/{edge_key(e)}", lambda: operations.get(e.op).build(channels, neuron))
        self.ops = nn.ModuleDict({edge_key(e): build_op(e) for e in self.edges})
        self._incoming = {j: [e for e in self.edges if e.dst == j] for j in range(cell.nodes)}
        self._forward_in = {j: [e for e in self._incoming[j] if not e.backward] for j in range(cell.nodes)}
        self._backward = [e for e in self.edges if e.backward]

    def forward(self, x: torch.Tensor, run_edge: Callable[[Edge, torch.Tensor], torch.Tensor] | None = None,
                add: Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor] | None = None) -> torch.Tensor:
        """``x [T, B, C, H, W]`` -> the output node's value. In a cell without backward edges,
        ``run_edge(edge, source)`` replaces running an edge's module on a node value, and
        ``add(total, y, j, k)`` replaces ``total + y``, the sum of node ``j``'s first ``k``
        incoming edges' outputs plus the next one's (the search memoises both); edges run in
        the order of ``self.edges`` and are summed in that order."""
        if self.recurrent:
            return self._forward_steps(x)
        run = run_edge or self._run_edge
        nodes: dict[int, torch.Tensor] = {0: x}
        for j in range(1, self.nodes):
            incoming = self._incoming[j]
            if incoming:
                total = run(incoming[0], nodes[incoming[0].src])
                for k, e in enumerate(incoming[1:], 1):
                    y = run(e, nodes[e.src])
                    total = total + y if add is None else add(total, y, j, k)
                nodes[j] = total
        last = self.nodes - 1
        return nodes[last] if last in nodes else torch.zeros_like(x)  # an output node without live edges

    def _run_edge(self, edge: Edge, source: torch.Tensor) -> torch.Tensor:
        return self.ops[edge_key(edge)](source)

    def _forward_steps(self, x: torch.Tensor) -> torch.Tensor:
        states: dict[str, tuple | None] = {edge_key(e): None for e in self.edges}
        carried = {n: None for n in range(self.nodes)}  # backward edges' outputs of step t - 1
        outputs = []
        for frame in x.unbind(0):
            nodes: dict[int, torch.Tensor] = {}
            for j in range(self.nodes):
                total = carried[j]
                if j == 0:
                    total = frame if total is None else frame + total
                for e in self._forward_in[j]:
                    y, states[edge_key(e)] = self._step(e, nodes[e.src], states)
                    total = y if total is None else total + y
                nodes[j] = torch.zeros_like(frame) if total is None else total
            outputs.append(nodes[self.nodes - 1])
            carried = {n: None for n in range(self.nodes)}
            for e in self._backward:
                y, states[edge_key(e)] = self._step(e, nodes[e.src], states)
                carried[e.dst] = y if carried[e.dst] is None else carried[e.dst] + y
        return torch.stack(outputs)

    def _step(self, edge: Edge, source: torch.Tensor, states: dict[str, tuple | None]) -> tuple[torch.Tensor, tuple]:
        return self.ops[edge_key(edge)].step(source, states[edge_key(edge)])


def edge_key(edge: Edge) -> str:
    """Module name of an edge's operation, e.g. ``"0_3_conv3x3"``."""
    return f"{edge.src}_{edge.dst}_{edge.op}"


class SpikingNetwork(nn.Module):
    """Stem, cells with reductions between them, head; see :mod:`spikenas.space.macro`.

    Args:
        genotype: the cells (validated against ``operations``).
        macro: the macro-architecture.
        neuron: LIF settings of every neuron.
        operations: the operation registry (default: all registered plugins).
        seed: per-part initialisation seed (None: the global RNG).
    """

    def __init__(
        self,
        genotype: Genotype,
        macro: MacroConfig,
        neuron: NeuronConfig | None = None,
        operations: OperationRegistry | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        operations = operations or get_registries().operations
        neuron = neuron or NeuronConfig()
        self.genotype = validate_genotype(genotype, operations)
        self.macro = macro
        n = len(genotype.cells)
        macro.head_features(n)  # fails early, naming the knob, if the input is too small
        self.stem = seeded(seed, "stem", lambda: Stem(macro))
        self.cells = nn.ModuleList(
            CellModule(cell, macro.cell_shape(i)[0], neuron, operations, seed, f"cell{i}")
            for i, cell in enumerate(genotype.cells)
        )
        self.reductions = nn.ModuleList(
            seeded(seed, f"reduction{i}", lambda i=i: build_reduction(macro, i, neuron)) for i in range(n - 1)
        )
        self.head = seeded(seed, "head", lambda: Head(macro, n, neuron))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Direct encoding: ``[B, c, H, W] -> [T, B, C, H', W']`` (stem once, repeated over T)."""
        x = self.stem(images)
        return x.unsqueeze(0).expand(self.macro.timesteps, *x.shape)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Output of the last cell, ``[T, B, C_last, H_last, W_last]``."""
        x = self.encode(images)
        for i, cell in enumerate(self.cells):
            if i > 0:
                x = self.reductions[i - 1](x)
            x = cell(x)
        return x

    def timestep_logits(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, c, H, W] -> [T, B, classes]``."""
        return self.head(self.features(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, c, H, W] -> [B, classes]``: logits averaged over the timesteps."""
        return self.timestep_logits(images).mean(0)
