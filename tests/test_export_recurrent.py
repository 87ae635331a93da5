"""Backward (temporal) edges in every toolchain's file: each executor runs a backward edge as a
cycle one step late, so spikenas places the edge back to a node the executor runs before the
edge's source (norse and sinabs drop a ``Delay``; snnTorch refuses it). The toolchains
themselves run these files in tests/test_consumers.py."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import nir
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from spikenas import Genotype
from spikenas.export import consumers, load_nir, network_to_nir, run_nir
from spikenas.export.graph import Graph, write
from spikenas.plugin import get_registries
from spikenas.space.cell import CellSpace

from fuzzing import BUDGETS, fuzz
from test_export import images, trained_like
from test_export_targets import CONSUMERS, RECURRENT, _depth_first, neuron_for


@pytest.mark.parametrize("target", CONSUMERS)
@pytest.mark.parametrize("cells", list(RECURRENT.values()), ids=list(RECURRENT))
def test_a_backward_edge_goes_back_to_a_cell_node_its_executor_runs_before_it(cells, target):
    """Each executor delivers such an edge one step late: the node runs before the edge's
    source; for snnTorch's ``nir_to_torch`` the node also has another input and reaches the
    source (both checked by running the files: tests/test_consumers.py)."""
    graph = network_to_nir(trained_like(Genotype(cells), neuron_for(target)), target=target)
    assert not any(isinstance(n, nir.Delay) for n in graph.nodes.values())  # norse and sinabs drop it, snnTorch refuses it
    order = sorted(graph.nodes) if target == "snntorch" else _depth_first(graph)
    assert set(order) == set(graph.nodes) and isinstance(graph.nodes[order[-1]], nir.Output)
    position = {n: i for i, n in enumerate(order)}
    back = [(a, b) for a, b in graph.edges if position[a] >= position[b]]
    g = Graph()
    g.nodes, g.edges = graph.nodes, graph.edges
    edges = [e for cell in cells for e in cell.edges if e.backward]
    assert len(back) == len(edges)
    for source, node in back:
        edge = next(e for e in edges if source.endswith(f"_{e.src}_{e.dst}_{e.op}_back"))
        assert node.endswith(f"_node{edge.dst}") and len(g.inputs(node)) >= 2 and g.reaches(node, source)


@pytest.mark.parametrize("cells", list(RECURRENT.values()), ids=list(RECURRENT))
def test_norses_own_importer_runs_backward_edges_one_step_late(cells, tmp_path):
    """norse is installed beside spikenas: its ``from_nir`` runs the file as the network, and
    the same file without the fed-back edges does not (the agreement is about the feedback)."""
    net = trained_like(Genotype(cells))
    graph = network_to_nir(net, target="norse")
    x = images()
    with torch.no_grad():
        expected = net.timestep_logits(x)
    write(tmp_path / "net.nir", graph)
    assert torch.allclose(consumers.run("norse", str(tmp_path / "net.nir"), x, 4), expected, atol=1e-5)
    graph.edges = [(a, b) for a, b in graph.edges if not (a.endswith("_back") and "_node" in b)]  # as a Delay, dropped
    write(tmp_path / "cut.nir", graph)
    assert not torch.allclose(consumers.run("norse", str(tmp_path / "cut.nir"), x, 4), expected, atol=1e-2)


@BUDGETS
def test_random_recurrent_cells_of_the_search_space_run_one_step_late_for_every_toolchain(budget):
    """Cells drawn as the search draws them with backward edges on: each toolchain's file
    exports (sinabs's of the network with sinabs's neurons, which its target runs), and norse's own
    importer and spikenas's reader of the snnTorch and norse files (their executors' order) give
    the network's logits at every step."""
    x = images()

    @given(st.integers(0, 2**32 - 1), st.sampled_from([3, 4, 5]), st.integers(1, 2))
    @fuzz(budget, ci=4)
    def check(seed, nodes, count):
        rng = random.Random(seed)
        space = CellSpace(["zero", "skip", "conv1x1", "conv3x3", "avgpool"], get_registries().operations, nodes, backward=True)
        genotype = Genotype(tuple(space.sample_snasnet(rng) for _ in range(count)))
        net = trained_like(genotype)
        with torch.no_grad():
            expected = net.timestep_logits(x)
        graphs = {target: network_to_nir(net if neuron_for(target) is None else trained_like(genotype, neuron_for(target)),
                                         target=target) for target in CONSUMERS}
        with tempfile.TemporaryDirectory() as directory:
            write(Path(directory) / "norse.nir", graphs["norse"])
            runs = [consumers.run("norse", str(Path(directory) / "norse.nir"), x, 4)]
        runs += [run_nir(load_nir(graphs[target]), x, 4) for target in ("snntorch", "norse")]
        assert all(torch.allclose(got, expected, atol=1e-5) for got in runs)

    check()
