"""A trained network exported for each toolchain and run by that toolchain in its own nox
environment (``noxfile.py``): shared by ``tests/test_consumers.py`` and ``bench/interop.py``.

:func:`train` trains the network of :data:`GENOTYPE` (a 3x3 average pool, skips, nodes that sum
two and three branches, a reduction, a hidden layer and votes in the head), or of
:data:`RECURRENT_GENOTYPE` (backward edges), on real Fashion-MNIST with ``spikenas fit``, with the
neuron model each consumer runs (:data:`NEURON`: spikenas's ``lif`` for snnTorch and norse,
sinabs's ``sinabs_lif`` and, for Speck, ``sinabs_iaf``); :func:`export` writes one file per
target with ``spikenas export``; :func:`toolchain_logits` runs a file with ``nox -s
"consumer(<toolchain>)"``. :data:`RECURRENT_TOOLCHAINS` are the consumers whose target exports
backward edges (not Speck: the chips run feed-forward networks).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from spikenas.app.cli import main
from spikenas.export.targets import TARGETS
from spikenas.train.classifier import SNNClassifier

ROOT = Path(__file__).resolve().parents[1]
TOOLCHAINS = ("snntorch", "norse", "norse_nir104", "sinabs", "speck")
# each consumer's nox session (``consumer(<session>)``), ``spikenas export --target`` and the
# neuron model its network trains with (the one the target runs)
SESSION = {"speck": "sinabs"}
TARGET = {"norse_nir104": "norse"}
NEURON = {"sinabs": "sinabs_lif", "speck": "sinabs_iaf"}
# the consumers whose target exports backward edges (Target.feedback)
RECURRENT_TOOLCHAINS = tuple(t for t in TOOLCHAINS if TARGETS[TARGET.get(t, t)].recurrent)
CELL = {"nodes": 4, "edges": [["conv3x3", 0, 1], ["avgpool", 0, 2], ["skip", 1, 2], ["conv1x1", 0, 3],
                              ["skip", 1, 3], ["conv3x3", 2, 3]]}
GENOTYPE = {"cells": [CELL, CELL]}
# backward edges (each runs one step later): in the first cell two cycles, 2 -> 0 into the input
# node and 3 -> 1; in the second, 2 -> 1 on no cycle (node 1 never reaches node 2)
RECURRENT_GENOTYPE = {"cells": [
    {"nodes": 4, "edges": [["conv3x3", 0, 1], ["skip", 1, 2], ["conv1x1", 2, 0], ["avgpool", 0, 3], ["conv3x3", 2, 3],
                           ["conv1x1", 3, 1]]},
    {"nodes": 4, "edges": [["conv3x3", 0, 1], ["avgpool", 0, 2], ["conv1x1", 2, 1], ["skip", 1, 3], ["conv3x3", 2, 3]]},
]}
MACRO = {"timesteps": 5, "channels": 8, "stem_stride": 2, "head_pool": 2, "head_hidden": 32, "votes": 2, "dropout": 0.0}
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


@dataclass(frozen=True)
class Trained:
    final: Path
    checkpoint: Path


def train(directory: Path, steps: int, weight_bits: int | None = None, neuron: str = "lif",
          genotype: dict = GENOTYPE) -> Trained:
    """``spikenas fit`` of ``genotype`` for ``steps`` steps of 64 Fashion-MNIST images
    (``weight_bits``: quantisation-aware training at that precision; ``neuron``: the neuron
    model, sinabs's with sinabs's surrogate)."""
    directory.mkdir(parents=True, exist_ok=True)
    model = {"genotype": genotype, "macro": MACRO, "seed": 0, "scheduler_interval": "step",
             "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.003}}}
    if neuron != "lif":
        model["neuron"] = {"model": neuron, "reset": "soft", "surrogate": "exp"}
    if weight_bits:
        model.update(quantization={"weight_bits": weight_bits}, cost_options={"weight_bits": weight_bits})
    final = directory / "final.yaml"
    final.write_text(yaml.safe_dump({
        "model": model, "seed_everything": 0,
        "data": {"class_path": "spikenas.data.FashionMNIST", "init_args": {"batch_size": 64}},
        "trainer": {"default_root_dir": str(directory), "accelerator": "cpu", "max_epochs": 1,
                    "limit_train_batches": steps, "limit_val_batches": 10},
    }))
    main(["fit", "--config", str(final), *QUIET])
    return Trained(final, next(directory.rglob("last.ckpt")))


class Networks:
    """The trained networks of ``genotype`` at one precision, one per neuron model, each trained
    when first asked for (:meth:`get`), with its logits on ``images``."""

    def __init__(self, directory: Path, steps: int, weight_bits: int | None, images: torch.Tensor,
                 genotype: dict = GENOTYPE) -> None:
        self.directory, self.steps, self.weight_bits, self.images = directory, steps, weight_bits, images
        self.genotype = genotype
        self.trained: dict[str, tuple[Trained, torch.Tensor]] = {}

    def get(self, toolchain: str) -> tuple[Trained, torch.Tensor]:
        """The network ``toolchain`` runs (of :data:`NEURON`'s model) and its ``[T, N, classes]`` logits."""
        neuron = NEURON.get(toolchain, "lif")
        if neuron not in self.trained:
            trained = train(self.directory / neuron, self.steps, self.weight_bits, neuron, self.genotype)
            self.trained[neuron] = trained, spikenas_logits(trained, self.images)
        return self.trained[neuron]


def export(trained: Trained, toolchain: str) -> Path:
    """``spikenas export`` of ``trained`` for ``toolchain``'s target, beside its ``final.yaml``."""
    target = TARGET.get(toolchain, toolchain)
    path = trained.final.parent / f"{target}.nir"
    main(["export", "--config", str(trained.final), "--ckpt_path", str(trained.checkpoint), "--output", str(path),
          "--target", target, "--check_images", "0"])
    return path


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


def install(toolchain: str) -> str | None:
    """Make ``toolchain``'s environment; the reason when pip cannot install it, else None."""
    done = nox("-r", "--install-only", "-s", f"consumer({SESSION.get(toolchain, toolchain)})")
    if done.returncode:
        tail = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-3:]
        return f"pip could not install {toolchain}'s environment: {' / '.join(tail)}"
    return None


def toolchain_logits(toolchain: str, nir_file: Path, images: torch.Tensor, timesteps: int, workdir: Path) -> np.ndarray:
    """``[T, N, classes]`` logits of ``images`` run by ``toolchain`` (installed by :func:`install`)."""
    images_file, out = workdir / "images.npz", workdir / f"{toolchain}-logits.npz"
    np.savez(images_file, images=images.numpy(), timesteps=timesteps)
    done = nox("-R", "-s", f"consumer({SESSION.get(toolchain, toolchain)})", "--", str(nir_file), str(images_file), str(out))
    if done.returncode:
        raise RuntimeError(f"{toolchain} failed on {nir_file}:\n{(done.stdout + done.stderr)[-3000:]}")
    return np.load(out)["logits"]


def agreement(got: np.ndarray, expected: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Same class share, both accuracies, and the share of images whose every step's logits are
    within 1e-4 of spikenas's."""
    mine, theirs = expected.numpy(), got
    same = float((mine.mean(0).argmax(1) == theirs.mean(0).argmax(1)).mean())
    close = float((np.abs(mine - theirs).max(axis=(0, 2)) <= 1e-4).mean())
    accuracy = lambda logits: float((logits.mean(0).argmax(1) == labels.numpy()).mean())  # noqa: E731
    return {"agree": same, "acc": accuracy(theirs), "spikenas_acc": accuracy(mine), "steps_close": close}
