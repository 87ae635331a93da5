"""Genotype values: YAML/dict round trip, stable hash, one-line errors naming the culprit."""

from __future__ import annotations

import pickle

import pytest
import torch
import yaml

from spikenas import CellGenotype, Edge, Genotype, SpikenasError
from spikenas.space import GenotypeError, validate_genotype

SNASNET = {"cells": [{"nodes": 4, "edges": [["conv3x3", 0, 1], ["skip", 0, 2], ["conv1x1", 1, 2],
                                            ["avgpool", 0, 3], ["zero", 1, 3], ["conv3x3", 2, 3]]}]}


def one_line_error(data, operations, match: str) -> str:
    """Parse + validate ``data`` (dict or YAML text); return the error message, checked."""
    with pytest.raises(GenotypeError) as info:
        g = Genotype.from_yaml(data) if isinstance(data, str) else Genotype.from_dict(data)
        validate_genotype(g, operations)
    message = str(info.value)
    assert "\n" not in message, message
    assert match in message, message
    assert isinstance(info.value, SpikenasError)
    return message


def test_dict_round_trip(genotype):
    assert Genotype.from_dict(genotype.to_dict()) == genotype
    assert Genotype.from_dict(genotype) is genotype


def test_yaml_round_trip(genotype):
    text = genotype.to_yaml()
    assert Genotype.from_yaml(text) == genotype
    # edges are written as flow lists [op, src, dst]
    assert "- [conv1x1, 3, 1]" in text
    # a config that embeds the genotype under a 'genotype' key parses too
    assert Genotype.from_yaml(yaml.safe_dump({"genotype": genotype.to_dict()})) == genotype


def test_edge_order_is_canonical():
    a = CellGenotype.from_ops(4, [("skip", 0, 3), ("conv3x3", 0, 1), ("conv1x1", 2, 1)])
    b = CellGenotype.from_ops(4, [("conv1x1", 2, 1), ("conv3x3", 0, 1), ("skip", 0, 3)])
    assert a == b and hash(a) == hash(b)
    assert [e.pair for e in a.edges] == [(0, 1), (1, 2), (0, 3)]
    assert a.edges[1].backward and not a.edges[0].backward


def test_stable_hash_value():
    g = Genotype.from_dict(SNASNET)
    # fixed forever: the hash names results on disk; change it only with a migration
    assert g.hash == "a6a5089860f9"
    assert Genotype.from_yaml(g.to_yaml()).hash == g.hash
    other = g.replace_cell(0, g.cells[0].replace_edge(Edge(0, 3, "skip")))
    assert other.hash != g.hash


def test_value_semantics(genotype):
    with pytest.raises(AttributeError):
        genotype.cells = ()  # frozen
    assert pickle.loads(pickle.dumps(genotype)) == genotype
    assert len({genotype, Genotype.from_dict(genotype.to_dict())}) == 1
    assert str(genotype).count("|") == 1


def test_valid_genotype_passes(genotype, operations):
    assert validate_genotype(genotype, operations) is genotype


@pytest.mark.parametrize(
    "edges, culprit",
    [
        ([["conv5x5", 0, 1], ["skip", 0, 3]], "conv5x5"),                    # unknown operation
        ([["conv3x3", 0, 7], ["skip", 0, 3]], "node 7 out of range 0..3"),    # edge out of range
        ([["conv3x3", -1, 2], ["skip", 0, 3]], "node -1 out of range"),
        ([["conv3x3", 2, 2], ["skip", 0, 3]], "node 2 to itself"),           # edge to itself
        ([["conv3x3", 0, 1], ["skip", 0, 1], ["skip", 0, 3]], "(0, 1)"),     # duplicate pair
        ([["conv3x3", 1, 2], ["skip", 2, 1], ["skip", 0, 3]], "(1, 2)"),     # same pair, both ways
        ([["conv3x3", 0, 1], ["skip", 1, 0], ["skip", 0, 3]], "(0, 1)"),     # feedback into 0 on a used pair
    ],
)
def test_bad_edges_are_one_line_errors(edges, culprit, operations):
    message = one_line_error({"cells": [{"nodes": 4, "edges": edges}]}, operations, culprit)
    assert message.startswith("cell 0")


def test_unknown_operation_lists_known_ones(operations):
    message = one_line_error({"cells": [{"nodes": 4, "edges": [["conv5x5", 0, 3]]}]}, operations, "conv5x5")
    assert "known: avgpool, conv1x1, conv3x3, skip, zero" in message


@pytest.mark.parametrize(
    "edges",
    [
        [["conv3x3", 0, 1], ["zero", 0, 3]],                     # output unreachable
        [["conv3x3", 0, 1], ["skip", 3, 1], ["zero", 0, 3]],     # only a backward edge into 3
        [["zero", 0, 1], ["conv3x3", 1, 3]],                     # path broken by zero
    ],
)
def test_no_path_from_input_to_output(edges, operations):
    one_line_error({"cells": [{"nodes": 4, "edges": edges}]}, operations, "no forward path from node 0 (input) to node 3")


def test_error_names_the_cell(operations):
    good = SNASNET["cells"][0]
    bad = {"nodes": 4, "edges": [["conv3x3", 0, 1], ["zero", 0, 3]]}
    one_line_error({"cells": [good, bad]}, operations, "cell 1")


@pytest.mark.parametrize(
    "text, culprit",
    [
        ("cells: [", "line 1, column 9"),
        ("cells:\n  - nodes: 4\n   edges: x", "line 3"),
        ("a: b: c", "line 1, column 5"),
    ],
)
def test_malformed_yaml(text, culprit, operations):
    message = one_line_error(text, operations, culprit)
    assert message.startswith("malformed genotype YAML")


@pytest.mark.parametrize(
    "data, culprit",
    [
        ({"cels": []}, "{'cels': []}"),
        ([1, 2], "[1, 2]"),
        (None, "None"),
        ({"cells": [{"nodes": 4, "edges": "x"}]}, "cell 0 needs 'edges' as a list"),
        ({"cells": [{"nodes": 4, "edges": [["conv3x3", 0]]}]}, "['conv3x3', 0]"),
        ({"cells": [{"nodes": 4, "edges": [[3, 0, 1]]}]}, "[3, 0, 1]"),
        ({"cells": [{"nodes": 4, "edges": [["conv3x3", 0, True]]}]}, "True"),
        ({"cells": [{"nodes": 4, "edges": [["conv3x3", 0, "1"]]}]}, "'1'"),
        ({"cells": [{"nodes": 4, "edge": [["skip", 0, 3]]}]}, "cell 0 has unknown key 'edge'"),
        ({"cells": [{"nodes": 3.0, "edges": [["skip", 0, 2]]}]}, "nodes must be a whole number, got 3.0"),
    ],
)
def test_malformed_structure(data, culprit, operations):
    message = one_line_error(data, operations, culprit)
    assert message.startswith("malformed genotype")


def test_malformed_structure_from_yaml(operations):
    one_line_error("- a\n- b\n", operations, "['a', 'b']")
    one_line_error("cells: []\n", operations, "at least one cell")


def test_cell_needs_two_nodes_and_no_typo_sized_count():
    with pytest.raises(GenotypeError, match=r"a cell has 2\.\.64 nodes, got 1"):
        CellGenotype(1, ())
    with pytest.raises(GenotypeError, match=r"a cell has 2\.\.64 nodes, got 100000000"):  # would allocate without end
        Genotype.from_dict({"cells": [{"nodes": 100000000, "edges": [["skip", 0, 99999999]]}]})


# SNASNet's README cells (CIFAR-10 and CIFAR-100): both have a backward edge into node 0
SNASNET_CELLS = {"cifar10": "0303 0030 2002 0200", "cifar100": "0302 0030 3003 0000"}


@pytest.mark.parametrize("name", sorted(SNASNET_CELLS))
def test_snasnet_cnt_mat_round_trips_and_builds(name, operations, tiny_macro):
    matrix = SNASNET_CELLS[name]
    cell = CellGenotype.from_cnt_mat(matrix)
    assert cell.to_cnt_mat() == matrix
    assert CellGenotype.from_cnt_mat(matrix.split()) == cell
    assert Edge(2, 0, "conv1x1" if name == "cifar10" else "conv3x3") in cell.edges
    rows = ", ".join(f"'{row}'" for row in matrix.split())
    genotype = Genotype.from_yaml(f"cells:\n  - cnt_mat: '{matrix}'\n  - {{cnt_mat: [{rows}]}}\n")
    assert genotype.cells == (cell, cell)
    assert Genotype.from_yaml(genotype.to_yaml()) == genotype
    from spikenas.network import SpikingNetwork

    net = SpikingNetwork(genotype, tiny_macro, seed=0)
    assert net.cells[0].recurrent and net(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_cnt_mat_decodes_each_digit_and_direction():
    cell = CellGenotype.from_cnt_mat("0124 0003 0000 0020")
    assert set(cell.edges) == {Edge(0, 1, "skip"), Edge(0, 2, "conv1x1"), Edge(0, 3, "avgpool"), Edge(1, 2, "zero"),
                               Edge(1, 3, "conv3x3"), Edge(3, 2, "conv1x1")}


@pytest.mark.parametrize("matrix, culprit", [
    ("0303 0030 2002", "expected 3 rows of as many digits"),
    ("0353 0030 2002 0200", "digit 5"),
    ("0303 3030 2002 0200", "pair (0, 1) has a forward and a backward edge"),
    ("1303 0030 2002 0200", "diagonal must be 0"),
    ([303, 30, 2002, 200], "must be strings: quote them"),
])
def test_bad_cnt_mat_is_a_one_line_error(matrix, culprit):
    with pytest.raises(GenotypeError) as error:
        Genotype.from_dict({"cells": [{"cnt_mat": matrix}]})
    assert culprit in str(error.value) and str(error.value).startswith("cell 0") and "\n" not in str(error.value)


def test_cnt_mat_of_a_plugin_operation_is_refused():
    with pytest.raises(GenotypeError, match="'dwsep3x3' has no cnt_mat digit"):
        CellGenotype.from_ops(4, [("dwsep3x3", 0, 3)]).to_cnt_mat()


@pytest.mark.parametrize("cell, message", [
    ({"cnt_mat": "0²03 0030 2002 0200"}, "malformed cnt_mat"),  # str.isdigit() accepts '²'
    ({"cnt_mat": "0303 0030 2002 0200", "nodes": 5}, "says nodes: 5 but its cnt_mat has 4 rows"),
    ({"cnt_mat": "0303 0030 2002 0200", "colour": "red"}, "unknown key 'colour'"),
    ({"cnt_mat": "0303 0030 2002 0200", "edges": [["skip", 0, 3]]}, "both 'cnt_mat' and 'edges'"),
])
def test_a_cnt_mat_cell_that_says_two_things_is_one_line_not_a_guess(cell, message):
    with pytest.raises(GenotypeError, match=message) as error:
        Genotype.from_dict({"cells": [cell]})
    assert "\n" not in str(error.value)
