"""The scoring engine: builds candidate networks, runs them on the scoring batches, records their
spikes and turns them into scores and SynOps.

Search strategies, the search driver and the analysis talk to it through :class:`ScoringEngine`
and the :class:`~spikenas.evaluate.protocol.CellScorer` that
:func:`~spikenas.evaluate.cells.cell_scorer` hands out; they know no neuron model and no
operation class. How a score is evaluated is the score's own answer
(:func:`~spikenas.score.evaluation_of`), acted on in this package only.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from spikenas.evaluate.protocol import Assessment
from spikenas.evaluate.stacked_tail import STACK_BYTES, StackedTail, chunks, recorder
from spikenas.network import SpikingNetwork
from spikenas.network.profile import Profiler
from spikenas.neuron import NeuronConfig, compiled_inference, record_spikes
from spikenas.plugin.registry import Registry
from spikenas.score import Evaluation, KernelAccumulator, evaluation_of, finite_mean, measure_network, scoring_mode, score_network
from spikenas.space.genotype import CellGenotype, Genotype
from spikenas.space.macro import MacroConfig
from spikenas.cost.synops import SynOpsTally, fan_outs_by_module, measure_synops


def assess_network(network: nn.Module, batches: list[torch.Tensor], score, synops: bool) -> Assessment:
    """The mean kernel score of ``network`` over ``batches`` (each ``[B, c, H, W]``) and, with
    ``synops``, its SynOps per image counted in the same pass (at initialisation: batch norm on
    batch statistics)."""
    tally = SynOpsTally(fan_outs_by_module(network)) if synops else None
    value = score_network(network, batches, score, tally)
    return Assessment(value, None if tally is None else tally.value() / sum(len(b) for b in batches))


def network_synops(network: nn.Module, batches: list[torch.Tensor]) -> dict[str, float]:
    """SynOps per inference of each profile layer of ``network`` at initialisation on
    ``batches`` (batch norm on batch statistics), as the search measures them."""
    return measure_synops(scoring_mode(network), batches)


def ranks_whole_networks_only(score: object) -> bool:
    """Whether ``score`` ranks whole networks without a spike kernel (size, SynOps and
    whole-network scores): a search with it counts no SynOps beside the score."""
    return evaluation_of(score) is not Evaluation.SPIKE_KERNEL


@contextlib.contextmanager
def compiled_lif(enabled: bool) -> Iterator[None]:
    """While open, large LIF layers run as one compiled kernel (``compile_lif``; equal spikes)."""
    with compiled_inference() if enabled else contextlib.nullcontext():
        yield


@dataclass
class ScoringEngine:
    """Scores candidates of one macro on the scoring batches.

    Attributes:
        macro: the macro-architecture every candidate uses; ``num_cells`` cells per genotype.
        neuron: LIF settings.
        operations: the operation registry (how each edge is built).
        score: the training-free score (any :class:`~spikenas.score.Evaluation`).
        batches: the scoring images, each ``[B, c, H, W]``, on the scoring device and layout.
        seed: weight-initialisation seed (parts are seeded by name).
        complete: the cheapest whole network that completes a tuple of leading cells (a cost
            question the search answers: later cells at their cheapest).
        bytes_of: the cost model's total bytes of a genotype (for ``size`` scores).
        count_synops: whether whole networks' SynOps are counted with their score (a search
            under a SynOps limit).
        memory_format: the layout of scored networks' weights (``torch.channels_last`` or
            ``torch.contiguous_format``).
        stack_bytes: how many bytes of input the part after a cell (or the head) may take when
            it runs for several candidates at once (0: one at a time;
            :mod:`spikenas.evaluate.stacked_tail`).
    """

    macro: MacroConfig
    num_cells: int
    neuron: NeuronConfig
    operations: Registry
    score: object
    batches: list[torch.Tensor]
    seed: int
    complete: Callable[[tuple[CellGenotype, ...]], Genotype]
    bytes_of: Callable[[Genotype], int]
    count_synops: bool = False
    memory_format: torch.memory_format = torch.contiguous_format
    stack_bytes: int = STACK_BYTES

    @property
    def evaluation(self) -> Evaluation:
        return evaluation_of(self.score)

    @property
    def device(self) -> torch.device:
        return self.batches[0].device

    def build(self, genotype: Genotype) -> SpikingNetwork:
        """The network of ``genotype``, seeded per part, on the scoring device in the scoring
        memory layout."""
        network = SpikingNetwork(genotype, self.macro, self.neuron, self.operations, seed=self.seed)
        return network.to(self.device, memory_format=self.memory_format)

    def params_of(self, genotype: Genotype) -> int:
        return Profiler(self.macro, self.neuron, self.operations).profile(genotype).params

    def full_score(self, genotype: Genotype) -> float:
        """The score of the whole network (mean over the scoring batches)."""
        kind = self.evaluation
        if kind is Evaluation.SIZE:
            return self.score.of(self.bytes_of(genotype), self.params_of(genotype))
        if kind is Evaluation.SYNOPS:
            return float(sum(self.synops_by_layer(genotype).values()))
        return measure_network(self.build(genotype), self.batches, self.score)

    def synops_by_layer(self, genotype: Genotype) -> dict[str, float]:
        """SynOps per inference of each layer of ``genotype``'s network (:func:`network_synops`)."""
        return network_synops(self.build(genotype), self.batches)

    def ranks_whole_networks_only(self) -> bool:
        return ranks_whole_networks_only(self.score)

    def assess(self, genotype: Genotype) -> Assessment:
        """The whole network's score and, with ``count_synops``, its SynOps (one pass)."""
        if self.ranks_whole_networks_only():  # no SynOps: refused with a SynOps limit
            return Assessment(self.full_score(genotype))
        return assess_network(self.build(genotype), self.batches, self.score, self.count_synops)

    def assess_many(self, genotypes: list[Genotype]) -> list[Assessment]:
        """:meth:`assess` of each genotype, equal to assessing them one by one. Each network
        runs up to its head; the heads (the same weights in every network of the macro: parts
        are seeded by name) then run for as many networks at once as ``stack_bytes`` of head
        input allow (:class:`~spikenas.evaluate.stacked_tail.StackedTail`)."""
        if self.ranks_whole_networks_only():
            return [self.assess(g) for g in genotypes]
        steps, (c, h, w) = self.macro.timesteps, self.macro.cell_shape(self.num_cells - 1)
        head_input = steps * len(self.batches[0]) * c * h * w * self.batches[0].element_size()
        return [a for group in chunks(genotypes, head_input, self.stack_bytes) for a in self._assess_group(group)]

    def _assess_group(self, genotypes: list[Genotype]) -> list[Assessment]:
        if len(genotypes) < 2:
            return [self.assess(g) for g in genotypes]
        networks = [scoring_mode(self.build(g)) for g in genotypes]
        head = networks[0].head
        tail = StackedTail([head.features, head.classifier], self.stack_bytes)
        synops = self.count_synops
        fans = [fan_outs_by_module(n) if synops else {} for n in networks]
        in_head = {id(m) for m in head.modules()}
        head_fans = {i: fan for i, fan in fans[0].items() if i in in_head}
        fans = [{**fan, **head_fans} for fan in fans]  # the tail runs network 0's head for all
        values: list[list[float]] = [[] for _ in networks]
        totals = [SynOpsTally(fan) for fan in fans]
        with torch.inference_mode():
            for images in self.batches:
                accs = [KernelAccumulator(self.score) for _ in networks]
                tallies = [SynOpsTally(fan) if synops else None for fan in fans]
                features = []
                for network, acc, tally in zip(networks, accs, tallies):
                    with record_spikes(network, acc.add) if tally is None else tally.recording(network, acc.add):
                        features.append(network.features(images))
                tail.run(features, recorder(accs, tallies))
                for k, (acc, tally) in enumerate(zip(accs, tallies)):
                    values[k].append(acc.value())
                    if tally is not None:
                        totals[k].add(tally.total)
        images = sum(len(b) for b in self.batches)
        return [Assessment(finite_mean(v), t.value() / images if synops else None) for v, t in zip(values, totals)]
