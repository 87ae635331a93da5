"""The consumer matrix: snnTorch, norse and sinabs, each in its own nox environment with no
spikenas in it, run what ``spikenas export --target <toolchain>`` writes for networks trained on
real Fashion-MNIST with the neurons that toolchain runs, and give spikenas's classes and per-step
logits (``pytest -m consumers``). A toolchain pip cannot install, or missing data, skips a test,
and fails it under ``CI=true`` (``tests/toolchains.py``).

Covered here (:data:`TESTED`), on 1,000 test images: ``every-op`` with float32 and 8-bit weights
by every toolchain (so each neuron model: ``lif``, ``sinabs_lif``, ``sinabs_iaf``),
``recurrent`` with float32 ones by every toolchain that runs backward edges (not Speck), and,
with spikenas's ``lif`` neurons only (snnTorch, norse on both nir versions), ``one-cell`` and
``three-cells`` with 8-bit weights and ``learnt-tau`` and ``main`` with float32 ones.
``bench/interop.py`` runs every network of :data:`consumer_matrix.NETWORKS` by every toolchain
that runs it, at both precisions, on the whole test set.
"""

from __future__ import annotations

import nir
import pytest
import yaml

from consumer_matrix import (MAIN_GENOTYPE, MAIN_MACRO, NEURON, RECURRENT_TOOLCHAINS, ROOT, TOOLCHAINS, Case, Matrix,
                             agreement, export, fmnist_test_images, install, nox)
from datasets import FMNIST_SYSTEM_DIR
from spikenas.app.cli import main
from spikenas.export import load_nir, run_nir
from toolchains import in_ci, missing

pytestmark = pytest.mark.consumers
IMAGES = 1000
# (network, weight bits, toolchains): every network once, both precisions and every toolchain's
# neurons on the one with every operation; the others, but for the backward edges, only with the
# lif neurons (the main network's as scripts/main.sh finds it), so by snnTorch and norse: each
# neuron model is a network to train, and .ci/run's time is bounded (bench/interop.py runs all)
LIF_TOOLCHAINS = tuple(t for t in TOOLCHAINS if NEURON.get(t, "lif") == "lif")
TESTED = [("every-op", 32, TOOLCHAINS), ("every-op", 8, TOOLCHAINS), ("recurrent", 32, RECURRENT_TOOLCHAINS),
          ("one-cell", 8, LIF_TOOLCHAINS), ("three-cells", 8, LIF_TOOLCHAINS), ("learnt-tau", 32, LIF_TOOLCHAINS),
          ("main", 32, LIF_TOOLCHAINS)]
CASES = [Case(network, bits, toolchain) for network, bits, toolchains in TESTED for toolchain in toolchains]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """Every case's networks and logits (made as the tests ask for them) and the images' labels."""
    _require_fashion_mnist()
    images, labels = fmnist_test_images(IMAGES)
    return Matrix(tmp_path_factory.mktemp("matrix"), images, CASES), labels


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.network}-{c.weight_bits}bit-{c.toolchain}")
def test_the_toolchains_own_importer_runs_the_export_as_spikenas_does(case, matrix):
    """sinabs runs the networks of sinabs_lif and sinabs_iaf neurons by plain ``sinabs.from_nir``;
    a ``recurrent`` network's backward edges run one step late in every toolchain."""
    reason = install(case.toolchain)
    if reason:
        missing(reason, in_ci())
    matrix, labels = matrix
    got, (_, expected) = matrix.got(case), matrix.expected(case)
    assert got.shape == tuple(expected.shape)
    result = agreement(got, expected, labels)
    print(case, result)
    assert result["agree"] >= 0.995, result
    assert abs(result["acc"] - result["spikenas_acc"]) <= 0.003, result
    assert result["steps_close"] >= 0.98, result  # per-step logits equal but where float rounding flips a spike
    assert result["spikenas_acc"] > 0.5, result  # a trained network: the agreement is about real decisions


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


def test_the_main_network_is_what_the_main_command_finds(tmp_path):
    """``main``'s genotype and macro are those ``scripts/main.sh``'s search finds (configs/search.yaml
    at 256 KiB on Fashion-MNIST): a change to the search, its scores or its data shows here."""
    _require_fashion_mnist()
    main(["search", "--config", str(ROOT / "configs" / "search.yaml"), "--budget", "256KiB",
          "--trainer.default_root_dir", str(tmp_path)])
    found = yaml.safe_load(next(tmp_path.rglob("final.yaml")).read_text())["model"]
    assert found["genotype"] == MAIN_GENOTYPE
    assert found["macro"] == MAIN_MACRO


def _require_fashion_mnist() -> None:
    if not (FMNIST_SYSTEM_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        missing("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)", in_ci())


def test_spikenas_installed_beside_sinabs_exports_and_round_trips():
    """sinabs pins nir<=1.0.4 (so nirtorch 2.0.2): spikenas's export tests pass there, every
    --target sinabs export is checked by sinabs itself, and sinabs's neuron models against
    sinabs's own layers (tests/test_neuron_sinabs.py, which fails there if sinabs does not import)."""
    done = nox("-r", "-s", "spikenas_beside_sinabs")
    output = done.stdout + done.stderr
    if done.returncode and "pip install" in output.splitlines()[-3:][0]:
        missing(f"pip could not install spikenas beside sinabs: {output.splitlines()[-1]}", in_ci())
    assert done.returncode == 0, output[-3000:]
    assert "nir 1.0.4" in output and " passed" in output, output[-3000:]
