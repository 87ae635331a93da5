"""Proxy training: every network of an analysis trained and evaluated with one short recipe.

Each process of an analysis trains *different* networks at the same time (the networks are
split across processes, not the batches of one network), so a proxy run is a plain training
loop on one device: a Lightning ``Trainer`` per network would synchronise its metrics and logs
across the process group that carries the analysis. The loop uses the model template's own
optimiser factory, label smoothing and memory layout; the learning rate anneals with a cosine
over the proxy's steps. Retraining a chosen network for real is ``spikenas fit``.

Every network sees the same images: a seeded training subset (``proxy.train_subset`` of the
datamodule's training split, augmented as the datamodule says), validation and test subsets;
the network's seed sets its initial weights and its data order.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from spikenas.analysis.settings import ProxyRecipe
from spikenas.analysis.sizes import size_measures
from spikenas.base.errors import SpikenasError
from spikenas.network import SpikingNetwork
from spikenas.network.profile import Profiler
from spikenas.neuron import NeuronConfig
from spikenas.plugin.manager import Registries
from spikenas.score import Evaluation, evaluation_of, measure_network
from spikenas.space.genotype import Genotype
from spikenas.space.macro import MacroConfig

SUBSET_SEED = 0  # the subsets are the same for every network, seed and rerun


@dataclass(frozen=True)
class ProxyResult:
    """What one proxy run measured: accuracies as fractions, ``seconds`` of wall time
    (training and evaluation), the steps trained and the mean loss of the last 10% of them."""

    val_acc: float
    test_acc: float
    seconds: float
    steps: int
    final_loss: float


def _subset(dataset: Dataset, size: int | None) -> Dataset:
    if size is None or size >= len(dataset):
        return dataset
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(SUBSET_SEED))[:size]
    return Subset(dataset, sorted(pick.tolist()))


def _materialise(dataset: Dataset, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``([N, c, H, W], [N])`` of a (small, unaugmented) dataset, loaded once."""
    images, labels = [], []
    for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        images.append(x)
        labels.append(y)
    return torch.cat(images), torch.cat(labels)


SIZE_MEASURES = (Evaluation.SIZE, Evaluation.SYNOPS)


def ranked_scores(registries: Registries, options: dict[str, dict[str, Any]]) -> list[str]:
    """The registered scores the analysis ranks (``options[name]``: score ``name``'s options):
    all but size measures, which its size baselines already rank by."""
    return [name for name in registries.scores.names()
            if evaluation_of(registries.scores.create(name, **options.get(name, {}))) not in SIZE_MEASURES]


class ProxyTrainer:
    """Trains networks of one analysis with the proxy recipe on ``device``.

    Args:
        datamodule: a :class:`~spikenas.data.SpikenasDataModule` (needs a validation split).
        recipe: the proxy recipe.
        neuron: LIF settings of every network.
        registries: operation and score registries.
        optimizer: the model template's optimiser factory, ``optimizer(params)``.
        label_smoothing: of the training loss.
        memory_format: ``torch.channels_last`` or ``torch.contiguous_format``.
        device: where networks train.
    """

    def __init__(
        self,
        datamodule: Any,
        recipe: ProxyRecipe,
        neuron: NeuronConfig,
        registries: Registries,
        optimizer: Any,
        label_smoothing: float = 0.0,
        memory_format: torch.memory_format = torch.contiguous_format,
        device: torch.device | str = "cpu",
    ) -> None:
        self.recipe = recipe
        self.neuron = neuron
        self.registries = registries
        self.optimizer = optimizer
        self.label_smoothing = label_smoothing
        self.memory_format = memory_format
        self.device = torch.device(device)
        datamodule.setup("fit")
        datamodule.setup("test")
        if datamodule.val_set is None:
            raise SpikenasError(
                "analyze needs a validation split (data.val_split > 0): the enhanced space is "
                "chosen on validation accuracy, test accuracy is only reported"
            )
        self.train_set = _subset(datamodule.train_set, recipe.train_subset)
        self.batch_size = recipe.batch_size or datamodule.batch_size
        self.steps = recipe.steps(len(self.train_set), self.batch_size)
        self.val = _materialise(_subset(datamodule.val_set, recipe.val_subset), recipe.eval_batch_size)
        self.test = _materialise(_subset(datamodule.test_set, recipe.test_subset), recipe.eval_batch_size)

    def build(self, genotype: Genotype, macro: MacroConfig, seed: int) -> SpikingNetwork:
        network = SpikingNetwork(genotype, macro, self.neuron, self.registries.operations, seed=seed)
        return network.to(self.device, memory_format=self.memory_format)

    def measure(self, genotype: Genotype, macro: MacroConfig, batches: list[torch.Tensor], seed: int,
                options: dict[str, dict[str, Any]], footprint: int) -> tuple[dict[str, float], dict[str, float]]:
        """``(scores, sizes)`` of the untrained network (weights seeded by ``seed``, as in the
        search): every registered score (``options[name]`` passed to score ``name``'s factory)
        and every size baseline (:mod:`spikenas.analysis.sizes`; ``footprint``: its bytes)."""
        network = self.build(genotype, macro, seed)
        values = {}
        for name in ranked_scores(self.registries, options):
            entry = self.registries.scores.entry(name)
            scorer = self.registries.scores.create(name, **options.get(name, {}))
            try:
                values[entry.name] = measure_network(network, batches, scorer)
            except Exception as exc:  # a plugin's bug: name it, in one line
                raise SpikenasError(
                    f"score {entry.name!r} (plugin {entry.plugin!r}) raised on network {genotype.hash}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        profile = Profiler(macro, self.neuron, self.registries.operations).profile(genotype)
        return values, size_measures(network, profile, footprint, batches)

    def train(self, genotype: Genotype, macro: MacroConfig, seed: int) -> ProxyResult:
        """Train ``genotype`` at ``macro`` from ``seed`` for the recipe's steps; evaluate it."""
        start = time.perf_counter()
        torch.manual_seed(seed)  # augmentation and dropout draws
        network = self.build(genotype, macro, seed)
        optimizer = self.optimizer(network.parameters())
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.steps)
        loader = DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
        network.train()
        losses: list[float] = []
        step = 0
        while step < self.steps:
            for images, labels in loader:
                images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
                loss = F.cross_entropy(network(images), labels.to(self.device), label_smoothing=self.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(loss.detach())
                step += 1
                if step == self.steps:
                    break
        tail = torch.stack(losses[-max(1, len(losses) // 10):]).mean().item()
        val_acc = self.accuracy(network, *self.val)
        test_acc = self.accuracy(network, *self.test)
        return ProxyResult(val_acc, test_acc, time.perf_counter() - start, self.steps, tail if math.isfinite(tail) else math.nan)

    @torch.inference_mode()
    def accuracy(self, network: SpikingNetwork, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Top-1 accuracy (fraction) of ``network`` on ``images [N, c, H, W]``."""
        network.eval()
        correct = 0
        for x, y in zip(images.split(self.recipe.eval_batch_size), labels.split(self.recipe.eval_batch_size)):
            x = x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
            correct += int((network(x).argmax(-1) == y.to(self.device)).sum())
        return correct / len(labels)
