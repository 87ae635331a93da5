"""Scoring a cell's candidates as whole networks, for scores that are not kernel sums.

:class:`~spikenas.evaluate.incremental.CellEvaluator` reuses the kernel contributions of the
layers a move does not change; that needs a score additive over LIF layers
(:attr:`~spikenas.score.Evaluation.SPIKE_KERNEL`). A size score and a whole-network score
(SynFlow, NASWOT at the head) are not. :class:`WholeCellEvaluator` gives the search the same
interface for them: a candidate cell's value is the score of the whole network it completes,
the cells chosen before it, the candidate, and the cells after it at their cheapest
(:meth:`ScoringEngine.full_score`). SynOps (:attr:`~spikenas.score.Evaluation.SYNOPS`) are
additive over LIF layers like a kernel score, so :class:`SynOpsCellEvaluator` counts them with a
:class:`CellEvaluator` that records no kernel (:class:`ZeroKernel`), reusing the prefix and
every memoised edge, instead of building and running each candidate's network.
"""

from __future__ import annotations

import torch

from spikenas.evaluate.engine import ScoringEngine
from spikenas.evaluate.incremental import CellEvaluator
from spikenas.evaluate.protocol import Assessment
from spikenas.space.genotype import CellGenotype, Genotype

__all__ = ["SynOpsCellEvaluator", "WholeCellEvaluator", "ZeroKernel"]


class WholeCellEvaluator:
    """A :class:`~spikenas.evaluate.protocol.CellScorer` for a score that ranks whole networks
    only; local and whole scores are the same."""

    def __init__(self, engine: ScoringEngine, prefix: tuple[CellGenotype, ...] = ()) -> None:
        self.engine, self.prefix = engine, tuple(prefix)
        self.index = len(self.prefix)
        self.is_last = self.index == engine.num_cells - 1

    def completed(self, cell: CellGenotype) -> Genotype:
        """The whole network ``cell`` completes at this position (the later cells cheapest)."""
        return self.engine.complete(self.prefix + (cell,))

    def score_many(self, cells: list[CellGenotype], whole: bool = True) -> list[float]:
        return [self.engine.full_score(self.completed(cell)) for cell in cells]

    def assess_many(self, cells: list[CellGenotype]) -> list[Assessment]:
        return [Assessment(value) for value in self.score_many(cells)]

    def following(self, cell: CellGenotype) -> "WholeCellEvaluator":
        return WholeCellEvaluator(self.engine, self.prefix + (cell,))


class ZeroKernel:
    """A kernel score that records nothing: every kernel is zero (``spikes [T, B, N]`` ->
    ``[B, B]``; batched: ``[T, K, B, N]`` -> ``[K, B, B]``), every score 0. What a
    :class:`CellEvaluator` records when it only counts SynOps."""

    name = "zero_kernel"
    batched = True

    def kernel(self, spikes: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros((), dtype=torch.float64, device=spikes.device)
        return zero.expand(*spikes.shape[1:-1], spikes.shape[-2])

    def reduce(self, kernel: torch.Tensor) -> float:
        return 0.0


class SynOpsCellEvaluator:
    """A :class:`~spikenas.evaluate.protocol.CellScorer` for the size score that counts SynOps:
    a candidate cell's value is the SynOps per inference of the whole network it completes (the
    later cells at their cheapest), counted in one pass by a :class:`CellEvaluator` that records
    no spike kernel. The same count as :meth:`ScoringEngine.full_score` up to float rounding,
    without building each network."""

    def __init__(self, engine: ScoringEngine, counter: CellEvaluator | None = None) -> None:
        self.engine = engine
        self.counter = counter if counter is not None else CellEvaluator(engine, (), score=ZeroKernel(), measure=True)
        self.prefix, self.index, self.is_last = self.counter.prefix, self.counter.index, self.counter.is_last

    def score_many(self, cells: list[CellGenotype], whole: bool = True) -> list[float]:
        return [a.score for a in self.assess_many(cells)]

    def assess_many(self, cells: list[CellGenotype]) -> list[Assessment]:
        return [Assessment(a.synops) for a in self.counter.assess_many(cells)]

    def following(self, cell: CellGenotype) -> "SynOpsCellEvaluator":
        return SynOpsCellEvaluator(self.engine, self.counter.following(cell))
