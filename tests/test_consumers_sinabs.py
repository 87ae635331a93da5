"""The consumer matrix, sinabs's neuron models: sinabs 3.1.3, in its own nox environment with no
spikenas in it, runs by plain ``sinabs.from_nir`` and ``reset_states`` what ``spikenas export
--target sinabs`` (``sinabs_lif`` neurons) and ``--target speck`` (``sinabs_iaf``) write for
networks trained on real Fashion-MNIST, and gives spikenas's classes and per-step logits
(``pytest -m consumers``); and spikenas installed beside sinabs (nir 1.0.4) passes its export
tests there. snnTorch and norse are ``tests/test_consumers.py``: the two modules run side by
side under ``pytest -n 2``. A toolchain pip cannot install, or missing data, skips a test, and
fails it under ``CI=true`` (``tests/toolchains.py``).

Covered (:data:`consumer_matrix.TESTED`), on 1,000 test images: ``every-op`` with float32 and
8-bit weights for both targets, ``recurrent`` with float32 ones for sinabs (Speck's chips run
feed-forward networks, so its target refuses backward edges).
"""

from __future__ import annotations

import pytest

from consumer_matrix import check_runs_as_spikenas, matrix_on_test_images, nox, cases_run_by
from toolchains import in_ci, missing

pytestmark = pytest.mark.consumers
CASES = cases_run_by(("sinabs", "speck"))


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """Every case's networks and logits (made as the tests ask for them) and the images' labels."""
    return matrix_on_test_images(tmp_path_factory.mktemp("matrix"), CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.network}-{c.weight_bits}bit-{c.toolchain}")
def test_sinabs_runs_the_export_as_spikenas_does(case, matrix):
    """sinabs runs the networks of sinabs_lif and sinabs_iaf neurons by plain ``sinabs.from_nir``;
    a ``recurrent`` network's backward edges run one step late."""
    check_runs_as_spikenas(case, *matrix)


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
