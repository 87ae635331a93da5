"""The NIR consumer matrix: each toolchain in an environment of its own, with no spikenas in it.

    nox -s "consumer(snntorch)" -- net.nir images.npz logits.npz [net2.nir images2.npz logits2.npz ...]
    nox -s spikenas_beside_sinabs

``consumer(<toolchain>)`` installs one toolchain at the versions users get from PyPI today
(``CONSUMERS``) on the CPU build of torch and runs ``spikenas/export/consumers.py`` with it: the
file imports only numpy, torch, nir and the toolchain, and holds the lines a user types
(``docs/deploy.md``). ``tests/test_consumers.py`` (``pytest -m consumers``, run by ``.ci/run``)
and ``bench/interop.py`` export a trained network, call these sessions and compare the logits.

``spikenas_beside_sinabs`` installs spikenas next to sinabs, whose ``nir<=1.0.4`` pin brings
nir 1.0.4 and nirtorch 2.0.2, and runs spikenas's export tests there; sinabs then also checks
every ``--target sinabs`` export in-process, and ``tests/test_neuron_sinabs.py`` checks the
``sinabs_lif`` and ``sinabs_iaf`` neuron models against sinabs's own layers.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
CPU_TORCH = "torch==2.13.0"  # the CPU wheel; a torch pin beside the toolchain keeps pip from a CUDA build
CONSUMERS = {
    "snntorch": ["snntorch==1.0.0", "nir==1.0.8", "nirtorch==2.6"],  # snnTorch declares no dependencies
    "norse": ["norse==1.1.0", "nir==1.0.8", "nirtorch==2.6"],
    "norse_nir104": ["norse==1.1.0", "nir==1.0.4", "nirtorch==2.0.2"],  # the versions sinabs pins
    "sinabs": ["sinabs==3.1.3"],  # pip resolves nir 1.0.4 and nirtorch 2.0.2
}
# PyPI's samna (a sinabs dependency) is a stub that runs pip at import; nothing here imports it,
# and without an index it could not reach anything if it did
OFFLINE = {"PIP_NO_INDEX": "1", "OMP_NUM_THREADS": "1"}


@nox.session(python=PYTHON)
@nox.parametrize("toolchain", list(CONSUMERS), ids=list(CONSUMERS))
def consumer(session: nox.Session, toolchain: str) -> None:
    """Run ``consumers.py`` with one toolchain: ``-- NIR_FILE IMAGES_NPZ OUT_NPZ``, one triple per file."""
    session.install(CPU_TORCH, *CONSUMERS[toolchain])
    if session.posargs:
        name = toolchain.split("_")[0]
        session.run("python", "spikenas/export/consumers.py", name, *session.posargs, env=OFFLINE)


@nox.session(python=PYTHON)
def spikenas_beside_sinabs(session: nox.Session) -> None:
    """spikenas's export tests with nir 1.0.4 and nirtorch 2.0.2 installed beside sinabs."""
    tested = Path("scripts/constraints.txt").read_text().splitlines()
    constraints = Path(session.create_tmp()) / "constraints.txt"  # the tested versions, but nir's from sinabs
    constraints.write_text("\n".join(line for line in tested if not line.startswith(("nir==", "nirtorch=="))) + "\n")
    session.install("-c", str(constraints), "torch", "torchvision")  # norse needs torchvision: the matching pair
    session.install("-c", str(constraints), "-e", ".[dev]", "sinabs==3.1.3", "nir==1.0.4", "nirtorch==2.0.2")
    session.run("python", "-c", "import nir, nirtorch; assert nir.version == '1.0.4', nir.version; print('nir', nir.version)")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_export.py",
                "tests/test_export_targets.py", "tests/test_export_load.py", "tests/test_export_support.py", "tests/test_neuron_sinabs.py",
                *session.posargs, env={**OFFLINE, "SPIKENAS_TOOLCHAINS": "sinabs"})  # the sinabs tests fail here, never skip
