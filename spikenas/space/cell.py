"""Cell topology: node pairs, dead-node pruning, validation, sampling and enumeration.

Everything here works on :class:`~spikenas.space.genotype.CellGenotype` values and asks the
operation registry only one question: does an operation carry a signal (``connects``)?
"""

from __future__ import annotations

import functools
import itertools
import random
from typing import Iterator, Sequence

from spikenas.plugin.registry import OperationRegistry
from spikenas.space.genotype import CellGenotype, Edge, Genotype, GenotypeError


def node_pairs(nodes: int) -> list[tuple[int, int]]:
    """All pairs ``(i, j)``, ``i < j``, ordered by ``j`` then ``i``: 6 pairs for 4 nodes."""
    return [(i, j) for j in range(1, nodes) for i in range(j)]


@functools.lru_cache(maxsize=1 << 16)
def _live(cell: CellGenotype, connecting: frozenset[str]) -> tuple[Edge, ...]:
    edges = [e for e in cell.edges if e.op in connecting]
    succ: dict[int, set[int]] = {n: set() for n in range(cell.nodes)}
    pred: dict[int, set[int]] = {n: set() for n in range(cell.nodes)}
    for e in edges:
        succ[e.src].add(e.dst)
        pred[e.dst].add(e.src)

    def reach(start: int, nxt: dict[int, set[int]]) -> set[int]:
        seen, todo = {start}, [start]
        while todo:
            for n in nxt[todo.pop()] - seen:
                seen.add(n)
                todo.append(n)
        return seen

    alive = reach(0, succ) & reach(cell.nodes - 1, pred)
    return tuple(e for e in edges if e.src in alive and e.dst in alive)


def live_edges(cell: CellGenotype, operations: OperationRegistry) -> tuple[Edge, ...]:
    """The edges that carry signal after pruning dead nodes.

    A node is dead unless it is reachable from node 0 and reaches the output node through
    connecting edges (forward or backward); edges touching a dead node are dropped, as are
    edges whose operation does not connect (``zero``).
    """
    return _live(cell, _connecting(operations))


def _connecting(operations: OperationRegistry) -> frozenset[str]:
    return frozenset(entry.name for entry in operations if entry.item.connects)


def has_forward_path(cell: CellGenotype, connecting: frozenset[str]) -> bool:
    """True when forward connecting edges lead from node 0 to the output node."""
    reached = {0}
    for edge in cell.edges:  # canonical order: by destination, so one pass suffices
        if not edge.backward and edge.op in connecting and edge.src in reached:
            reached.add(edge.dst)
    return cell.nodes - 1 in reached


def validate_cell(cell: CellGenotype, operations: OperationRegistry, where: str = "cell") -> None:
    """Raise :class:`GenotypeError` for an unknown operation or no input-to-output path."""
    for edge in cell.edges:
        if edge.op not in operations:
            known = ", ".join(sorted(operations.names()))
            raise GenotypeError(f"{where} edge {edge}: unknown operation {edge.op!r}; known: {known}")
    if not has_forward_path(cell, _connecting(operations)):
        raise GenotypeError(
            f"{where}: no forward path from node 0 (input) to node {cell.nodes - 1} (output)"
        )


def validate_genotype(genotype: Genotype, operations: OperationRegistry) -> Genotype:
    """Validate every cell; returns ``genotype`` for chaining."""
    for index, cell in enumerate(genotype.cells):
        validate_cell(cell, operations, where=f"cell {index}")
    return genotype


class CellSpace:
    """The cells a search may choose: operations per edge, and whether edges may go backward.

    Args:
        operations: names of the operations an edge may carry (validated against the registry).
        registry: the operation registry.
        nodes: nodes per cell (SNASNet: 4).
        backward: allow backward (temporal) edges, into the input node too.
        direct_edge: require a connecting forward edge from the input to the output node, as
            SNASNet's sampler does (fast information propagation).
    """

    def __init__(
        self,
        operations: Sequence[str],
        registry: OperationRegistry,
        nodes: int = 4,
        backward: bool = False,
        direct_edge: bool = True,
    ) -> None:
        if not operations:
            raise GenotypeError("the search space needs at least one operation")
        for name in operations:
            registry.get(name)  # unknown names fail here, naming the known ones
        self.operations = tuple(dict.fromkeys(operations))
        self.registry = registry
        self.nodes = nodes
        self.backward = backward
        self.direct_edge = direct_edge
        self.pairs = node_pairs(nodes)
        self.connecting = _connecting(registry)
        if not any(op in self.connecting for op in self.operations):
            raise GenotypeError(f"operations {list(self.operations)} contain none that connects")

    def edge_choices(self, pair: tuple[int, int]) -> list[Edge]:
        """Every edge the space allows on node pair ``pair``."""
        i, j = pair
        choices = [Edge(i, j, op) for op in self.operations]
        if self.backward:  # into node 0 too: SNASNet's feedback to the cell input
            choices += [Edge(j, i, op) for op in self.operations if op in self.connecting]
        return choices

    def is_valid(self, cell: CellGenotype) -> bool:
        if self.direct_edge:
            direct = [e for e in cell.edges if e.pair == (0, self.nodes - 1)]
            if not direct or direct[0].backward or direct[0].op not in self.connecting:
                return False
        return has_forward_path(cell, self.connecting)

    def sample(self, rng: random.Random) -> CellGenotype:
        """A uniformly random valid cell (rejection sampling over edge choices)."""
        choices = [self.edge_choices(pair) for pair in self.pairs]
        while True:
            cell = CellGenotype(self.nodes, tuple(rng.choice(c) for c in choices))
            if self.is_valid(cell):
                return cell

    def sample_snasnet(self, rng: random.Random) -> CellGenotype:
        """A random valid cell drawn as SNASNet's ``connection_matrix_gen`` draws one: each pair
        is forward or (with backward edges allowed) backward with probability 1/2, and its
        operation uniform among the space's; a backward non-connecting operation leaves the
        pair without an edge (``zero``). Rejection until valid, as SNASNet redraws until the
        input-to-output edge connects."""
        silent = next((op for op in self.operations if op not in self.connecting), None)
        while True:
            edges = []
            for i, j in self.pairs:
                op = rng.choice(self.operations)
                if self.backward and rng.random() < 0.5:
                    if op in self.connecting:
                        edges.append(Edge(j, i, op))
                    elif silent is not None:
                        edges.append(Edge(i, j, silent))
                else:
                    edges.append(Edge(i, j, op))
            cell = CellGenotype(self.nodes, tuple(edges))
            if self.is_valid(cell):
                return cell

    def enumerate(self) -> Iterator[CellGenotype]:
        """Every valid cell, in a fixed order."""
        choices = [self.edge_choices(pair) for pair in self.pairs]
        for edges in itertools.product(*choices):
            cell = CellGenotype(self.nodes, edges)
            if self.is_valid(cell):
                yield cell

    def cheapest_cells(self) -> list[CellGenotype]:
        """Candidates for the smallest cell: the input-to-output edge through each connecting
        operation, every other pair ``zero`` (or, without a non-connecting operation, each
        operation on every pair). The cheapest of these is the cheapest valid cell."""
        zeros = [op for op in self.operations if op not in self.connecting]
        fills = zeros[:1] or list(self.operations)
        out_pair = (0, self.nodes - 1)
        cells = []
        for direct in (op for op in self.operations if op in self.connecting):
            for fill in fills:
                edges = tuple(Edge(i, j, direct if (i, j) == out_pair else fill) for i, j in self.pairs)
                cells.append(CellGenotype(self.nodes, edges))
        return cells
