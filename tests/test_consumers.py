"""The consumer matrix, spikenas's ``lif`` neurons: snnTorch and norse (on nir 1.0.8 and on
sinabs's nir 1.0.4), each in its own nox environment with no spikenas in it, run what ``spikenas
export --target <toolchain>`` writes for networks trained on real Fashion-MNIST and give
spikenas's classes and per-step logits (``pytest -m consumers``). sinabs and Speck, whose neuron
models are other networks, are ``tests/test_consumers_sinabs.py``: the two modules run side by
side under ``pytest -n 2``. A toolchain pip cannot install, or missing data, skips a test, and
fails it under ``CI=true`` (``tests/toolchains.py``).

Covered (:data:`consumer_matrix.TESTED`), on 1,000 test images: ``every-op`` with float32 and
8-bit weights, ``recurrent`` with float32 ones, ``one-cell`` and ``three-cells`` with 8-bit
weights and ``learnt-tau`` with float32 ones and ``main`` (what ``scripts/main.sh`` finds) with
4-bit ones. ``bench/interop.py`` runs every network of :data:`consumer_matrix.NETWORKS` by every
toolchain that runs it, at both
precisions, on the whole test set.
"""

from __future__ import annotations

import nir
import pytest
import yaml

from consumer_matrix import (LIF_TOOLCHAINS, MAIN_BITS, MAIN_GENOTYPE, MAIN_MACRO, ROOT, Case, check_runs_as_spikenas,
                             export, matrix_on_test_images, cases_run_by)
from spikenas.export import load_nir, run_nir

pytestmark = pytest.mark.consumers
CASES = cases_run_by(LIF_TOOLCHAINS)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """Every case's networks and logits (made as the tests ask for them) and the images' labels."""
    return matrix_on_test_images(tmp_path_factory.mktemp("matrix"), CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.network}-{c.weight_bits}bit-{c.toolchain}")
def test_the_toolchains_own_importer_runs_the_export_as_spikenas_does(case, matrix):
    """A ``recurrent`` network's backward edges run one step late in every toolchain."""
    check_runs_as_spikenas(case, *matrix)


def test_the_recurrent_networks_backward_edges_change_its_classes(matrix):
    """Without its backward edges (the ``Delay`` nodes of its ``nir`` file cut out: what norse
    and sinabs make of a ``Delay``) the network classes images otherwise, so the agreement above
    holds only where the toolchain runs the feedback, one step late."""
    matrix, labels = matrix
    # spikenas's lif neurons, which target nir runs
    trained, expected = matrix.expected(Case("recurrent", 32, "snntorch"))
    graph = nir.read(export(trained, "nir"))
    delays = [name for name, node in graph.nodes.items() if isinstance(node, nir.Delay)]
    assert len(delays) == 3
    graph.edges = [(a, b) for a, b in graph.edges if a not in delays and b not in delays]
    for name in delays:
        del graph.nodes[name]
    cut = run_nir(load_nir(graph), matrix.images, expected.shape[0])
    changed = float((cut.mean(0).argmax(1) != expected.mean(0).argmax(1)).float().mean())
    print(f"without its backward edges {changed:.3f} of the images change class")
    assert changed >= 0.02, changed


def test_the_main_network_is_what_the_main_command_finds():
    """``main``'s genotype, macro and precision are those of the whole-budget search that
    ``scripts/main.sh`` runs (configs/search_budget.yaml at 64 KiB on Fashion-MNIST), as the bench
    ledger recorded it (``bench/budget_fmnist.py``'s arm D: the same command; its ``--retime``
    fails if a search no longer finds that pick). The search itself takes 7.5 minutes: not here."""
    config = yaml.safe_load((ROOT / "configs" / "search_budget.yaml").read_text())
    assert config["budget"] == "64KiB" and config["choose"] == "trials"
    recorded = yaml.safe_load((ROOT / "bench" / "results" / "budget_fmnist" / "64KiB-D.yaml").read_text())["model"]
    assert recorded["genotype"] == MAIN_GENOTYPE
    assert recorded["macro"] == MAIN_MACRO
    assert recorded["quantization"]["weight_bits"] == MAIN_BITS
