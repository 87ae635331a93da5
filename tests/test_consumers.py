"""The consumer matrix: snnTorch, norse and sinabs, each in its own nox environment with no
spikenas in it, run what ``spikenas export --target <toolchain>`` writes for a network trained on
real Fashion-MNIST with the neurons that toolchain runs, and give spikenas's classes and per-step
logits (``pytest -m consumers``). A toolchain pip cannot install, or missing data, skips a test,
and fails it under ``CI=true`` (``tests/toolchains.py``)."""

from __future__ import annotations

import nir
import pytest

from consumer_matrix import (RECURRENT_GENOTYPE, RECURRENT_TOOLCHAINS, TOOLCHAINS, Networks, agreement, export,
                             fmnist_test_images, install, nox, toolchain_logits)
from datasets import FMNIST_SYSTEM_DIR
from spikenas.export import load_nir, run_nir
from toolchains import in_ci, missing

pytestmark = pytest.mark.consumers
IMAGES = 1000


def _fashion_mnist():
    if not (FMNIST_SYSTEM_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        missing("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)", in_ci())
    return fmnist_test_images(IMAGES)


@pytest.fixture(scope="module", params=[None, 8], ids=["float32", "8-bit"])
def networks(request, tmp_path_factory):
    images, labels = _fashion_mnist()
    return Networks(tmp_path_factory.mktemp(f"bits{request.param}"), 150, request.param, images), labels


@pytest.fixture(scope="module")
def recurrent(tmp_path_factory):
    """The networks of :data:`RECURRENT_GENOTYPE` (backward edges), each with the neurons its
    toolchain runs, trained as ``networks``'s for twice as many steps (at 150 the ``lif`` one
    classes 48.8% of the images right)."""
    images, labels = _fashion_mnist()
    return Networks(tmp_path_factory.mktemp("recurrent"), 300, None, images, RECURRENT_GENOTYPE), labels


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
def test_the_toolchains_own_importer_runs_the_export_as_spikenas_does(toolchain, networks):
    _check_agreement(toolchain, networks)


@pytest.mark.parametrize("toolchain", RECURRENT_TOOLCHAINS)
def test_the_toolchains_own_importer_runs_backward_edges_one_step_late(toolchain, recurrent):
    """sinabs runs the network of sinabs_lif neurons by plain ``sinabs.from_nir``, as the others."""
    _check_agreement(toolchain, recurrent)


def test_the_recurrent_networks_backward_edges_change_its_classes(recurrent):
    """Without its backward edges (the ``Delay`` nodes of its ``nir`` file cut out: what norse
    and sinabs make of a ``Delay``) the network classes images otherwise, so the agreement above
    holds only where the toolchain runs the feedback, one step late."""
    networks, labels = recurrent
    trained, expected = networks.get("snntorch")  # spikenas's lif neurons, which target nir runs
    graph = nir.read(export(trained, "nir"))
    delays = [name for name, node in graph.nodes.items() if isinstance(node, nir.Delay)]
    assert len(delays) == 3
    graph.edges = [(a, b) for a, b in graph.edges if a not in delays and b not in delays]
    for name in delays:
        del graph.nodes[name]
    cut = run_nir(load_nir(graph), networks.images, expected.shape[0])
    changed = float((cut.mean(0).argmax(1) != expected.mean(0).argmax(1)).float().mean())
    print(f"without its backward edges {changed:.3f} of the images change class")
    assert changed >= 0.02, changed


def _check_agreement(toolchain, networks):
    reason = install(toolchain)
    if reason:
        missing(reason, in_ci())
    networks, labels = networks
    trained, expected = networks.get(toolchain)
    nir_file = export(trained, toolchain)
    got = toolchain_logits(toolchain, nir_file, networks.images, expected.shape[0], trained.final.parent)
    assert got.shape == tuple(expected.shape)
    result = agreement(got, expected, labels)
    assert result["agree"] >= 0.995, result
    assert abs(result["acc"] - result["spikenas_acc"]) <= 0.003, result
    assert result["steps_close"] >= 0.98, result  # per-step logits equal but where float rounding flips a spike
    assert result["spikenas_acc"] > 0.5, result  # a trained network: the agreement is about real decisions


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
