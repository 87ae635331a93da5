"""The consumer matrix's networks, each trained, exported for each toolchain and run by that
toolchain in its own nox environment (``noxfile.py``): shared by ``tests/test_consumers.py``
(snnTorch, norse), ``tests/test_consumers_sinabs.py`` (sinabs, Speck) and ``bench/interop.py``.

:data:`NETWORKS` names the networks (genotypes from the search space, with their macro and
neuron options): every operation in two cells, one cell, three cells, learnt time constants,
the main command's network and backward edges. :class:`Matrix` trains each network on real
Fashion-MNIST with ``spikenas fit`` once per precision and neuron model (:data:`NEURON`: the one
each consumer runs: spikenas's ``lif`` for snnTorch and norse, sinabs's ``sinabs_lif`` and, for
Speck, ``sinabs_iaf``), exports it with ``spikenas export --target`` and runs every file of one
nox session (``consumer(<session>)``) in a single call of it, since each call costs a torch
import and a toolchain import.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import yaml

from spikenas.app.cli import main
from spikenas.base.files import atomic_write
from spikenas.export.targets import TARGETS
from spikenas.train.classifier import SNNClassifier
from datasets import FMNIST_SYSTEM_DIR
from toolchains import in_ci, missing

ROOT = Path(__file__).resolve().parents[1]
TOOLCHAINS = ("snntorch", "norse", "norse_nir104", "sinabs", "speck")
# each consumer's nox session (``consumer(<session>)``), ``spikenas export --target`` and the
# neuron model its network trains with (the one the target runs)
SESSION = {"speck": "sinabs"}
TARGET = {"norse_nir104": "norse"}
NEURON = {"sinabs": "sinabs_lif", "speck": "sinabs_iaf"}
# the consumers whose target exports backward edges (Target.feedback)
RECURRENT_TOOLCHAINS = tuple(t for t in TOOLCHAINS if TARGETS[TARGET.get(t, t)].recurrent)
# the consumers whose neurons leak (not Speck's IAF), so have a time constant to learn
LEAKY_TOOLCHAINS = tuple(t for t in TOOLCHAINS if NEURON.get(t) != "sinabs_iaf")
CELL = {"nodes": 4, "edges": [["conv3x3", 0, 1], ["avgpool", 0, 2], ["skip", 1, 2], ["conv1x1", 0, 3],
                              ["skip", 1, 3], ["conv3x3", 2, 3]]}
# CELL with node 2's skip from node 1 made a zero: node 2 fed by the pool alone
ZERO_CELL = {"nodes": 4, "edges": [["conv3x3", 0, 1], ["avgpool", 0, 2], ["zero", 1, 2], ["conv1x1", 0, 3],
                                   ["skip", 1, 3], ["conv3x3", 2, 3]]}
# every operation of the search space (zero, skip, conv1x1, conv3x3, avgpool); nodes summing two
# and three branches
GENOTYPE = {"cells": [CELL, ZERO_CELL]}
# backward edges (each runs one step later): in the first cell two cycles, 2 -> 0 into the input
# node and 3 -> 1; in the second, 2 -> 1 on no cycle (node 1 never reaches node 2)
RECURRENT_GENOTYPE = {"cells": [
    {"nodes": 4, "edges": [["conv3x3", 0, 1], ["skip", 1, 2], ["conv1x1", 2, 0], ["avgpool", 0, 3], ["conv3x3", 2, 3],
                           ["conv1x1", 3, 1]]},
    {"nodes": 4, "edges": [["conv3x3", 0, 1], ["avgpool", 0, 2], ["conv1x1", 2, 1], ["skip", 1, 3], ["conv3x3", 2, 3]]},
]}
# a reduction between every two cells; a head with a 2x2 pool, a hidden LIF layer and two votes
MACRO = {"timesteps": 5, "channels": 8, "stem_stride": 2, "head_pool": 2, "head_hidden": 32, "votes": 2, "dropout": 0.0}
# What `bash scripts/main.sh` finds (`spikenas search --config configs/search_budget.yaml`, 64 KiB):
# the whole-budget search's pick, 4-bit weights (MAIN_BITS), 61,541 B; the bench ledger's
# bench/results/budget_fmnist/64KiB-D.yaml is the same search's record (its genotype and macro).
MAIN_GENOTYPE = {"cells": [
    {"nodes": 4, "edges": [["conv3x3", 0, 1], ["conv3x3", 0, 2], ["conv1x1", 1, 2], ["conv1x1", 0, 3], ["conv1x1", 1, 3],
                           ["conv1x1", 2, 3]]},
]}
MAIN_MACRO = {"timesteps": 5, "channels": 64, "channel_multiplier": 2, "stem_stride": 2, "head_pool": 2,
              "head_hidden": 0, "votes": 1, "dropout": 0.0}
MAIN_BITS = 4


@dataclass(frozen=True)
class Network:
    """One network of the matrix: ``genotype`` and ``macro`` (``spikenas fit``'s), ``neuron``
    options beside the model (:data:`NEURON` picks that), the ``toolchains`` that run it, and
    ``steps``: the training steps of 64 images the tests give it (enough to class more than
    half of the test images right, so the agreement is about real decisions)."""

    genotype: dict
    macro: dict = field(default_factory=lambda: MACRO)
    neuron: dict = field(default_factory=dict)
    toolchains: tuple[str, ...] = TOOLCHAINS
    steps: int = 150


# The steps: spikenas's lif neurons learn slowest (sinabs's, trained alike, class 10-20 points
# more images right after the same steps); what each lif network classes right of the 1,000
# test images after fewer steps, 2026-12-06: three-cells 0.524 after 60; learnt-tau 0.287 after
# 60; main 0.466 after 30, 0.729 after 60; recurrent 0.488 after 150.
NETWORKS = {
    "every-op": Network(GENOTYPE),
    "one-cell": Network({"cells": [CELL]}, steps=100),
    # 14x14, 7x7 and 3x3 maps: no head pool on the last
    "three-cells": Network({"cells": [CELL, ZERO_CELL, CELL]}, {**MACRO, "head_pool": 1}, steps=100),
    # sinabs_iaf (Speck) has no leak, so no time constant to learn
    "learnt-tau": Network(GENOTYPE, neuron={"learn_tau": True}, toolchains=LEAKY_TOOLCHAINS, steps=200),
    "main": Network(MAIN_GENOTYPE, MAIN_MACRO, steps=60),
    "recurrent": Network(RECURRENT_GENOTYPE, toolchains=RECURRENT_TOOLCHAINS, steps=300),
}
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
# What the consumer tests run (network, weight bits, toolchains), on 1,000 test images: every
# network once, both precisions and every toolchain's neurons on the one with every operation; the
# others, but for the backward edges, only with the lif neurons (the main network's at 4 bits, as
# scripts/main.sh finds it), so by snnTorch and norse: each neuron model is a network to train,
# and .ci/run's time is bounded (bench/interop.py runs all)
LIF_TOOLCHAINS = tuple(t for t in TOOLCHAINS if NEURON.get(t, "lif") == "lif")
TESTED = [("every-op", 32, TOOLCHAINS), ("every-op", 8, TOOLCHAINS), ("recurrent", 32, RECURRENT_TOOLCHAINS),
          ("one-cell", 8, LIF_TOOLCHAINS), ("three-cells", 8, LIF_TOOLCHAINS), ("learnt-tau", 32, LIF_TOOLCHAINS),
          ("main", MAIN_BITS, LIF_TOOLCHAINS)]
TEST_IMAGES = 1000


@dataclass(frozen=True)
class Trained:
    final: Path
    checkpoint: Path


def train(directory: Path, network: Network, steps: int, weight_bits: int, neuron: str = "lif") -> Trained:
    """``spikenas fit`` of ``network`` for ``steps`` steps of 64 Fashion-MNIST images
    (``weight_bits`` 4 or 8: quantisation-aware training at that precision, 32: float; ``neuron``: the
    neuron model, sinabs's with sinabs's surrogate). A training that finished in ``directory``
    with the same ``final.yaml`` is reused (a stopped ``bench/interop.py`` goes on)."""
    directory.mkdir(parents=True, exist_ok=True)
    model = {"genotype": network.genotype, "macro": network.macro, "seed": 0, "scheduler_interval": "step",
             "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.003}}}
    options = {"model": neuron, "reset": "soft", "surrogate": "exp"} if neuron != "lif" else {}
    if options or network.neuron:
        model["neuron"] = {**options, **network.neuron}
    if weight_bits < 32:
        model.update(quantization={"weight_bits": weight_bits}, cost_options={"weight_bits": weight_bits})
    final, finished = directory / "final.yaml", directory / "trained.yaml"
    config = yaml.safe_dump({
        "model": model, "seed_everything": 0,
        "data": {"class_path": "spikenas.data.FashionMNIST", "init_args": {"batch_size": 64}},
        "trainer": {"default_root_dir": str(directory), "accelerator": "cpu", "max_epochs": 1,
                    "limit_train_batches": steps, "limit_val_batches": 10},
    })
    if not (finished.is_file() and finished.read_text() == config):
        shutil.rmtree(directory / "lightning_logs", ignore_errors=True)  # an unfinished fit's logs
        final.write_text(config)
        main(["fit", "--config", str(final), *QUIET])
        atomic_write(finished, config)
    return Trained(final, next(directory.rglob("last.ckpt")))


@dataclass(frozen=True)
class Case:
    """``toolchain`` running :data:`NETWORKS`'s ``network`` with ``weight_bits`` (4, 8 or 32) weights."""

    network: str
    weight_bits: int
    toolchain: str


class Matrix:
    """Each of ``cases``'s spikenas logits and its toolchain's, on ``images``, made when first
    asked for under ``directory``: a network trained once per precision and neuron model
    (``steps`` training steps, or each network's own :attr:`Network.steps`), and, the first
    time a case of a nox session is asked for, every case of that session run in one call (which,
    where it fails, fails every case of the session without being run again)."""

    def __init__(self, directory: Path, images: torch.Tensor, cases: list[Case], steps: int | None = None) -> None:
        self.directory, self.images, self.cases, self.steps = directory, images, cases, steps
        self.trained: dict[tuple[str, int, str], tuple[Trained, torch.Tensor]] = {}
        self.logits: dict[Case, np.ndarray] = {}
        self.failed: dict[str, RuntimeError] = {}

    def expected(self, case: Case) -> tuple[Trained, torch.Tensor]:
        """The network ``case`` runs (of :data:`NEURON`'s model) and its ``[T, N, classes]`` logits."""
        neuron = NEURON.get(case.toolchain, "lif")
        key = (case.network, case.weight_bits, neuron)
        if key not in self.trained:
            network = NETWORKS[case.network]
            trained = train(self.directory / f"{case.network}_bits{case.weight_bits}" / neuron, network,
                            self.steps or network.steps, case.weight_bits, neuron)
            self.trained[key] = trained, spikenas_logits(trained, self.images)
        return self.trained[key]

    def got(self, case: Case) -> np.ndarray:
        """``[T, N, classes]``: ``case``'s logits as its toolchain computes them."""
        session = SESSION.get(case.toolchain, case.toolchain)
        if case not in self.logits and session not in self.failed:
            batch = [c for c in self.cases if SESSION.get(c.toolchain, c.toolchain) == session]
            files = [export(self.expected(c)[0], c.toolchain) for c in batch]
            timesteps = [self.expected(c)[1].shape[0] for c in batch]
            try:
                self.logits.update(zip(batch, toolchain_logits(session, files, self.images, timesteps, self.directory)))
            except RuntimeError as error:
                self.failed[session] = error
        if session in self.failed:
            raise self.failed[session]
        return self.logits[case]


def cases_run_by(toolchains: Iterable[str]) -> list[Case]:
    """:data:`TESTED`'s cases run by one of ``toolchains``."""
    return [Case(network, bits, t) for network, bits, tested in TESTED for t in tested if t in toolchains]


def check_runs_as_spikenas(case: Case, matrix: Matrix, labels: torch.Tensor) -> None:
    """``case``'s toolchain, installed (or the test skipped, failed under ``CI=true``), gives
    spikenas's class on at least 99.5% of the images, the same accuracy within 0.3 points and
    the same per-step logits on 98% of them, for a network that classes more than half right."""
    reason = install(case.toolchain)
    if reason:
        missing(reason, in_ci())
    got, (_, expected) = matrix.got(case), matrix.expected(case)
    assert got.shape == tuple(expected.shape)
    result = agreement(got, expected, labels)
    print(case, result)
    assert result["agree"] >= 0.995, result
    assert abs(result["acc"] - result["spikenas_acc"]) <= 0.003, result
    assert result["steps_close"] >= 0.98, result  # per-step logits equal but where float rounding flips a spike
    assert result["spikenas_acc"] > 0.5, result  # a trained network: the agreement is about real decisions


def export(trained: Trained, toolchain: str) -> Path:
    """``spikenas export`` of ``trained`` for ``toolchain``'s target, beside its ``final.yaml``."""
    target = TARGET.get(toolchain, toolchain)
    path = trained.final.parent / f"{target}.nir"
    main(["export", "--config", str(trained.final), "--ckpt_path", str(trained.checkpoint), "--output", str(path),
          "--target", target, "--check_images", "0"])
    return path


def matrix_on_test_images(directory: Path, cases: list[Case]) -> tuple[Matrix, torch.Tensor]:
    """A :class:`Matrix` of ``cases`` on the first :data:`TEST_IMAGES` Fashion-MNIST test images,
    and their labels (the test skipped where the data is missing, failed under ``CI=true``)."""
    require_fashion_mnist()
    images, labels = fmnist_test_images(TEST_IMAGES)
    return Matrix(directory, images, cases), labels


def require_fashion_mnist() -> None:
    if not (FMNIST_SYSTEM_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        missing("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)", in_ci())


def fmnist_test_images(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` Fashion-MNIST test images ``[N, 1, 28, 28]`` and their labels."""
    from spikenas.data import FashionMNIST

    data = FashionMNIST(batch_size=count)
    data.prepare_data()
    data.setup("test")
    return next(iter(data.test_dataloader()))


def spikenas_logits(trained: Trained, images: torch.Tensor) -> torch.Tensor:
    """``[T, N, classes]``: the trained network's own per-step logits."""
    model = SNNClassifier.load_from_checkpoint(trained.checkpoint, map_location="cpu", weights_only=True)
    with torch.no_grad():
        return torch.cat([model.network.eval().timestep_logits(chunk) for chunk in images.split(500)], dim=1)


def nox(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@functools.cache
def _install_session(session: str) -> str | None:
    done = nox("-r", "--install-only", "-s", f"consumer({session})")
    if done.returncode:
        tail = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-3:]
        return " / ".join(tail)
    return None


def install(toolchain: str) -> str | None:
    """Make ``toolchain``'s environment (once per session); the reason when pip cannot install it, else None."""
    reason = _install_session(SESSION.get(toolchain, toolchain))
    return reason and f"pip could not install {toolchain}'s environment: {reason}"


def toolchain_logits(session: str, nir_files: Iterable[Path], images: torch.Tensor, timesteps: Iterable[int],
                     workdir: Path) -> list[np.ndarray]:
    """``[T, N, classes]`` logits of ``images`` run for each of ``nir_files`` (with its number of
    ``timesteps``) by nox session ``consumer(<session>)`` (installed by :func:`install`), in one call."""
    runs, images_files = [], {}
    for k, (nir_file, steps) in enumerate(zip(nir_files, timesteps)):
        if steps not in images_files:
            images_files[steps] = workdir / f"images_T{steps}.npz"
            np.savez(images_files[steps], images=images.numpy(), timesteps=steps)
        runs += [str(nir_file), str(images_files[steps]), str(workdir / f"{session}-logits{k}.npz")]
    done = nox("-R", "-s", f"consumer({session})", "--", *runs)
    if done.returncode:
        raise RuntimeError(f"{session} failed on {runs[::3]}:\n{(done.stdout + done.stderr)[-3000:]}")
    return [np.load(out)["logits"] for out in runs[2::3]]


def agreement(got: np.ndarray, expected: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Same class share, both accuracies, and the share of images whose every step's logits are
    within 1e-4 of spikenas's."""
    mine, theirs = expected.numpy(), got
    same = float((mine.mean(0).argmax(1) == theirs.mean(0).argmax(1)).mean())
    close = float((np.abs(mine - theirs).max(axis=(0, 2)) <= 1e-4).mean())
    accuracy = lambda logits: float((logits.mean(0).argmax(1) == labels.numpy()).mean())  # noqa: E731
    return {"agree": same, "acc": accuracy(theirs), "spikenas_acc": accuracy(mine), "steps_close": close}
