"""The consumer matrix: snnTorch, norse and sinabs, each in its own nox environment with no
spikenas in it, run what ``spikenas export --target <toolchain>`` writes for a network trained on
real Fashion-MNIST, and give spikenas's classes and per-step logits (``pytest -m consumers``)."""

from __future__ import annotations

import nir
import pytest

from consumer_matrix import (RECURRENT_GENOTYPE, TOOLCHAINS, agreement, export, fmnist_test_images, install, nox,
                             spikenas_logits, toolchain_logits, train)
from datasets import FMNIST_SYSTEM_DIR
from spikenas.export import load_nir, run_nir

pytestmark = [
    pytest.mark.consumers,
    pytest.mark.skipif(not (FMNIST_SYSTEM_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
                       reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"),
]
IMAGES = 1000


@pytest.fixture(scope="module", params=[None, 8], ids=["float32", "8-bit"])
def exported(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"bits{request.param}")
    trained = train(directory, steps=150, weight_bits=request.param)
    images, labels = fmnist_test_images(IMAGES)
    return directory, trained, images, labels, spikenas_logits(trained, images)


@pytest.fixture(scope="module")
def recurrent(tmp_path_factory):
    """The network of :data:`RECURRENT_GENOTYPE` (backward edges), trained as ``exported``'s
    for twice as many steps (at 150 it classes 48.8% of the images right)."""
    directory = tmp_path_factory.mktemp("recurrent")
    trained = train(directory, steps=300, genotype=RECURRENT_GENOTYPE)
    images, labels = fmnist_test_images(IMAGES)
    return directory, trained, images, labels, spikenas_logits(trained, images)


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
def test_the_toolchains_own_importer_runs_the_export_as_spikenas_does(toolchain, exported):
    _check_agreement(toolchain, exported)


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
def test_the_toolchains_own_importer_runs_backward_edges_one_step_late(toolchain, recurrent):
    _check_agreement(toolchain, recurrent)


def test_the_recurrent_networks_backward_edges_change_its_classes(recurrent):
    """Without its backward edges (the ``Delay`` nodes of its ``nir`` file cut out: what norse
    and sinabs make of a ``Delay``) the network classes images otherwise, so the agreement above
    holds only where the toolchain runs the feedback, one step late."""
    directory, trained, images, labels, expected = recurrent
    graph = nir.read(export(trained, "nir", directory))
    delays = [name for name, node in graph.nodes.items() if isinstance(node, nir.Delay)]
    assert len(delays) == 3
    graph.edges = [(a, b) for a, b in graph.edges if a not in delays and b not in delays]
    for name in delays:
        del graph.nodes[name]
    cut = run_nir(load_nir(graph), images, expected.shape[0])
    changed = float((cut.mean(0).argmax(1) != expected.mean(0).argmax(1)).float().mean())
    print(f"without its backward edges {changed:.3f} of the images change class")
    assert changed >= 0.02, changed


def _check_agreement(toolchain, exported):
    reason = install(toolchain)
    if reason:
        pytest.skip(reason)
    directory, trained, images, labels, expected = exported
    nir_file = export(trained, toolchain.split("_")[0], directory)
    got = toolchain_logits(toolchain, nir_file, images, expected.shape[0], directory)
    assert got.shape == tuple(expected.shape)
    result = agreement(got, expected, labels)
    assert result["agree"] >= 0.995, result
    assert abs(result["acc"] - result["spikenas_acc"]) <= 0.003, result
    assert result["steps_close"] >= 0.98, result  # per-step logits equal but where float rounding flips a spike
    assert result["spikenas_acc"] > 0.5, result  # a trained network: the agreement is about real decisions


def test_spikenas_installed_beside_sinabs_exports_and_round_trips():
    """sinabs pins nir<=1.0.4 (so nirtorch 2.0.2): spikenas's export tests pass there, and
    every --target sinabs export is checked by sinabs itself."""
    done = nox("-r", "-s", "spikenas_beside_sinabs")
    output = done.stdout + done.stderr
    if done.returncode and "pip install" in output.splitlines()[-3:][0]:
        pytest.skip(f"pip could not install spikenas beside sinabs: {output.splitlines()[-1]}")
    assert done.returncode == 0, output[-3000:]
    assert "nir 1.0.4" in output and " passed" in output
