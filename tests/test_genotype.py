"""Genotype values: YAML/dict round trip, stable hash, one-line errors naming the culprit."""

from __future__ import annotations

import pickle

import pytest
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
        ([["conv3x3", 0, 1], ["skip", 1, 0], ["skip", 0, 3]], "node 0 is the cell input"),
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
    ],
)
def test_malformed_structure(data, culprit, operations):
    message = one_line_error(data, operations, culprit)
    assert message.startswith("malformed genotype")


def test_malformed_structure_from_yaml(operations):
    one_line_error("- a\n- b\n", operations, "['a', 'b']")
    one_line_error("cells: []\n", operations, "at least one cell")


def test_cell_needs_two_nodes():
    with pytest.raises(GenotypeError, match="at least 2 nodes, got 1"):
        CellGenotype(1, ())
