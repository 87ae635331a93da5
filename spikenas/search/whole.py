"""Scoring a cell's candidates as whole networks, for scores that are not kernel sums.

The consecutive search's :class:`~spikenas.search.incremental.CellEvaluator` reuses the kernel
contributions of the layers a move does not change; that needs a score additive over LIF
layers (:class:`~spikenas.score.KernelScore`). A size score (:mod:`spikenas.score.size`) and a
whole-network score (:class:`~spikenas.score.NetworkScore`: SynFlow, NASWOT at the head) are
not. :class:`WholeCellEvaluator` gives the search the same interface for them: a candidate
cell's value is the score of the whole network it completes, the cells chosen before it, the
candidate, and the cells after it at their cheapest (:meth:`SearchContext.full_score`).
The size score that counts SynOps (``size`` with ``measure: synops``) is the exception: SynOps
are additive over LIF layers like a kernel score, so :class:`SynOpsCellEvaluator` counts them
with a :class:`CellEvaluator`, reusing the prefix and every memoised edge, instead of building
and running each candidate's network. :func:`cell_evaluator` picks the evaluator for a score.
"""

from __future__ import annotations

from spikenas.score import scores_whole
from spikenas.score.size import ZeroKernel
from spikenas.search.context import Assessment, SearchContext
from spikenas.search.incremental import CellEvaluator
from spikenas.space.genotype import CellGenotype, Genotype

__all__ = ["SynOpsCellEvaluator", "WholeCellEvaluator", "cell_evaluator"]


def cell_evaluator(ctx: SearchContext) -> "CellEvaluator | WholeCellEvaluator | SynOpsCellEvaluator":
    """The evaluator of the first cell for the search's score: :class:`CellEvaluator` for a
    kernel score, :class:`SynOpsCellEvaluator` for the size score that counts SynOps,
    :class:`WholeCellEvaluator` for any other score that ranks whole networks only."""
    if getattr(ctx.score, "counts_synops", False):
        return SynOpsCellEvaluator(ctx)
    return WholeCellEvaluator(ctx) if scores_whole(ctx.score) else CellEvaluator(ctx, ())


class WholeCellEvaluator:
    """:class:`~spikenas.search.incremental.CellEvaluator`'s interface for a score that ranks
    whole networks only: ``score_many``, ``assess_many``, ``following``, ``prefix``, ``index``
    and ``is_last``; local and whole scores are the same."""

    def __init__(self, ctx: SearchContext, prefix: tuple[CellGenotype, ...] = ()) -> None:
        self.ctx, self.prefix = ctx, tuple(prefix)
        self.index = len(self.prefix)
        self.is_last = self.index == ctx.num_cells - 1

    def completed(self, cell: CellGenotype) -> Genotype:
        """The whole network ``cell`` completes at this position (the later cells cheapest)."""
        return self.ctx.memory.cheapest(self.ctx.cells, self.ctx.num_cells, self.prefix + (cell,))

    def score_many(self, cells: list[CellGenotype], whole: bool = True) -> list[float]:
        return [self.ctx.full_score(self.completed(cell)) for cell in cells]

    def assess_many(self, cells: list[CellGenotype]) -> list[Assessment]:
        return [Assessment(value) for value in self.score_many(cells)]

    def following(self, cell: CellGenotype) -> "WholeCellEvaluator":
        return WholeCellEvaluator(self.ctx, self.prefix + (cell,))


class SynOpsCellEvaluator:
    """:class:`WholeCellEvaluator`'s interface for the size score that counts SynOps: a
    candidate cell's value is the SynOps per inference of the whole network it completes (the
    later cells at their cheapest), counted in one pass by a :class:`CellEvaluator` that records
    no spike kernel (:class:`~spikenas.score.size.ZeroKernel`). The same count as
    :meth:`SearchContext.full_score` up to float rounding, without building each network."""

    def __init__(self, ctx: SearchContext, counter: CellEvaluator | None = None) -> None:
        self.ctx = ctx
        self.counter = counter if counter is not None else CellEvaluator(ctx, (), score=ZeroKernel(), measure=True)
        self.prefix, self.index, self.is_last = self.counter.prefix, self.counter.index, self.counter.is_last

    def score_many(self, cells: list[CellGenotype], whole: bool = True) -> list[float]:
        return [a.score for a in self.assess_many(cells)]

    def assess_many(self, cells: list[CellGenotype]) -> list[Assessment]:
        return [Assessment(a.synops) for a in self.counter.assess_many(cells)]

    def following(self, cell: CellGenotype) -> "SynOpsCellEvaluator":
        return SynOpsCellEvaluator(self.ctx, self.counter.following(cell))
