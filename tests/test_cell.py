"""Cells: dead-node pruning, backward edges, sampling validity, enumeration counts."""

from __future__ import annotations

import itertools
import random

import pytest

from spikenas import CellGenotype, Edge, SpikenasError
from spikenas.space import CellSpace, live_edges
from spikenas.space.cell import has_forward_path, node_pairs, validate_cell

OPS = ["zero", "skip", "conv1x1", "conv3x3", "avgpool"]


def cell(*ops: tuple[str, int, int]) -> CellGenotype:
    return CellGenotype.from_ops(4, ops)


def live(c: CellGenotype, operations) -> set[str]:
    return {str(e) for e in live_edges(c, operations)}


def test_node_pairs():
    assert node_pairs(4) == [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    assert len(node_pairs(5)) == 10


def test_all_live(snasnet_cell, operations):
    # only the zero edge goes
    assert live(snasnet_cell, operations) == {"0>1:conv3x3", "0>2:skip", "1>2:conv1x1", "0>3:avgpool", "2>3:conv3x3"}


def test_node_without_input_is_pruned(operations):
    # node 2 receives only zero edges: its outgoing edge 2>3 is dead
    c = cell(("conv3x3", 0, 1), ("zero", 0, 2), ("zero", 1, 2), ("skip", 0, 3), ("conv1x1", 1, 3), ("conv3x3", 2, 3))
    assert live(c, operations) == {"0>1:conv3x3", "0>3:skip", "1>3:conv1x1"}


def test_node_not_reaching_output_is_pruned(operations):
    # node 1 and node 2 are fed but feed nothing that reaches node 3
    c = cell(("conv3x3", 0, 1), ("avgpool", 0, 2), ("conv1x1", 1, 2), ("skip", 0, 3), ("zero", 1, 3), ("zero", 2, 3))
    assert live(c, operations) == {"0>3:skip"}


def test_backward_edge_keeps_nodes_alive(operations):
    # node 1 is fed only by node 3's previous timestep, and feeds node 3 through node 2
    c = cell(("zero", 0, 1), ("zero", 0, 2), ("conv1x1", 1, 2), ("skip", 0, 3), ("conv3x3", 3, 1), ("conv3x3", 2, 3))
    edges = live_edges(c, operations)
    assert {str(e) for e in edges} == {"1>2:conv1x1", "0>3:skip", "3>1:conv3x3", "2>3:conv3x3"}
    assert [e.backward for e in edges if e.op == "conv3x3"] == [True, False]


def test_backward_edge_from_dead_node_is_pruned(operations):
    # node 2 reaches the output only through a backward edge into node 1, which feeds nothing
    c = cell(("conv3x3", 0, 1), ("conv1x1", 0, 2), ("avgpool", 2, 1), ("skip", 0, 3), ("zero", 1, 3), ("zero", 2, 3))
    assert live(c, operations) == {"0>3:skip"}


def test_forward_path_ignores_backward_edges(operations):
    connecting = frozenset({"skip", "conv1x1", "conv3x3", "avgpool"})
    assert not has_forward_path(cell(("conv3x3", 0, 1), ("skip", 3, 1), ("zero", 0, 3)), connecting)
    assert has_forward_path(cell(("conv3x3", 0, 1), ("skip", 1, 3)), connecting)
    with pytest.raises(SpikenasError, match="no forward path"):
        validate_cell(cell(("conv3x3", 0, 1), ("skip", 3, 1), ("zero", 0, 3)), operations)


def test_replace_edge_can_reverse(snasnet_cell):
    c = snasnet_cell.replace_edge(Edge(2, 1, "conv1x1"))
    assert Edge(2, 1, "conv1x1") in c.edges and Edge(1, 2, "conv1x1") not in c.edges
    assert len(c.edges) == 6


def _forward_valid_count(direct_edge: bool) -> int:
    """Counted independently of spikenas: a path 0->3, 0->1->3, 0->2->3 or 0->1->2->3."""
    n = 0
    for ops in itertools.product(OPS, repeat=6):
        c = dict(zip([(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)], (op != "zero" for op in ops)))
        path = c[0, 3] or (c[0, 1] and c[1, 3]) or (c[0, 2] and c[2, 3]) or (c[0, 1] and c[1, 2] and c[2, 3])
        n += bool(path and (c[0, 3] or not direct_edge))
    return n


def test_enumeration_forward_only(operations):
    # 5^6 = 15,625 forward-only cells; 341 of them have no input-to-output path
    free = CellSpace(OPS, operations, direct_edge=False)
    assert sum(1 for _ in free.enumerate()) == _forward_valid_count(False) == 15284
    # SNASNet's rule (the input->output edge must connect): 4 * 5^5
    direct = CellSpace(OPS, operations, direct_edge=True)
    cells = list(direct.enumerate())
    assert len(cells) == _forward_valid_count(True) == 12500 == 4 * 5**5
    assert len(set(cells)) == len(cells)
    assert not any(e.backward for c in cells for e in c.edges)


def test_enumeration_with_backward_edges_of_three_operations(operations):
    # the same rule on a smaller space: 3 + 2 = 5 choices a pair, the direct edge one of the 2
    # connecting ops (the full space, 236,196 cells in about 10 s: the slow test below)
    space = CellSpace(["zero", "skip", "conv3x3"], operations, backward=True, direct_edge=True)
    assert len(space.edge_choices((0, 1))) == len(space.edge_choices((1, 2))) == 5
    assert Edge(1, 0, "conv3x3") in space.edge_choices((0, 1))
    cells = list(space.enumerate())
    assert len(cells) == len(set(cells)) == 2 * 5**5 == 6250
    assert any(e.backward for c in cells for e in c.edges)


@pytest.mark.slow  # enumerates 236,196 cells; the rule is checked on a smaller space above
def test_enumeration_with_backward_edges(operations):
    # every pair may also carry a backward edge of a connecting op (into node 0 too, as in
    # SNASNet): 5 + 4 = 9 choices; the direct edge (0, 3) must stay a forward connecting one
    space = CellSpace(OPS, operations, backward=True, direct_edge=True)
    assert len(space.edge_choices((0, 1))) == len(space.edge_choices((1, 2))) == 9
    assert Edge(1, 0, "conv3x3") in space.edge_choices((0, 1))
    assert sum(1 for _ in space.enumerate()) == 4 * 9**5 == 236196


def test_enumeration_without_zero(operations):
    space = CellSpace(["conv3x3", "skip"], operations)
    assert sum(1 for _ in space.enumerate()) == 2**6


@pytest.mark.parametrize("backward", [False, True])
def test_sampling_is_valid_and_seeded(backward, operations):
    space = CellSpace(OPS, operations, backward=backward)
    cells = [space.sample(random.Random(7)) for _ in range(3)]
    assert cells[0] == cells[1] == cells[2]
    rng = random.Random(0)
    sampled = [space.sample(rng) for _ in range(2000)]
    for c in sampled:
        assert space.is_valid(c)
        validate_cell(c, operations)
        assert [e.pair for e in c.edges] == node_pairs(4)
        direct = next(e for e in c.edges if e.pair == (0, 3))
        assert direct.op != "zero" and not direct.backward
        assert all(e.src != 0 for e in c.edges if e.backward)
    n_backward = sum(any(e.backward for e in c.edges) for c in sampled)
    if backward:
        assert n_backward > 1000  # 1 - (5/9)^3 = 83% of cells have one
    else:
        assert n_backward == 0
    assert len(set(sampled)) > 1500
    assert {e.op for c in sampled for e in c.edges} == set(OPS)


def test_space_errors(operations):
    with pytest.raises(SpikenasError, match="unknown operation 'conv9x9'"):
        CellSpace(["conv9x9"], operations)
    with pytest.raises(SpikenasError, match="none that connects"):
        CellSpace(["zero"], operations)
    with pytest.raises(SpikenasError, match="at least one operation"):
        CellSpace([], operations)


def test_cheapest_cells(operations):
    space = CellSpace(OPS, operations)
    cheapest = space.cheapest_cells()
    assert len(cheapest) == 4
    for c in cheapest:
        assert space.is_valid(c)
        assert len(live_edges(c, operations)) == 1
