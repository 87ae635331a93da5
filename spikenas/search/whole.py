"""Scoring a cell's candidates as whole networks, for scores that are not kernel sums.

The consecutive search's :class:`~spikenas.search.incremental.CellEvaluator` reuses the kernel
contributions of the layers a move does not change; that needs a score additive over LIF
layers (:class:`~spikenas.score.KernelScore`). A size score (:mod:`spikenas.score.size`) and a
whole-network score (:class:`~spikenas.score.NetworkScore`: SynFlow, NASWOT at the head) are
not. :class:`WholeCellEvaluator` gives the search the same interface for them: a candidate
cell's value is the score of the whole network it completes, the cells chosen before it, the
candidate, and the cells after it at their cheapest (:meth:`SearchContext.full_score`).
"""

from __future__ import annotations

from spikenas.score import scores_whole
from spikenas.search.context import Assessment, SearchContext
from spikenas.space.genotype import CellGenotype, Genotype

__all__ = ["WholeCellEvaluator"]


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
