"""``size``: the network's size as the search's score, the baseline every training-free score
must beat (``spikenas analyze`` ranks accuracy by it beside the scores).

It needs no spikes and no batch: a candidate scores its ``bytes`` under the search's cost model
(``measure: bytes``, the default) or its parameter count (``measure: params``), so the search
keeps the largest network that meets the budget. It is offered because on the data measured so
far counting bytes ranked trained accuracy better than SAHD (``docs/analysis.md``). A score
with ``measures_size`` is computed by :meth:`SizeScore.of` from the genotype, so it has no
spike kernel; the analysis leaves it out of its scores (its size baselines are the same thing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spikenas.errors import SpikenasError
from spikenas.plugin import hookimpl

if TYPE_CHECKING:
    from spikenas.search.context import SearchContext
    from spikenas.space.genotype import Genotype

MEASURES = ("bytes", "params")


class SizeScore:
    """Size as a score (see the module docstring)."""

    measures_size = True

    def __init__(self, measure: str = "bytes") -> None:
        if measure not in MEASURES:
            raise SpikenasError(f"score 'size': measure must be one of {', '.join(MEASURES)}, got {measure!r}")
        self.name = "size"
        self.measure = measure

    def of(self, ctx: "SearchContext", genotype: "Genotype") -> float:
        """The size of ``genotype`` in the search ``ctx``."""
        if self.measure == "bytes":
            return float(ctx.bytes_of(genotype))
        return float(ctx.memory.profiler.profile(genotype).params)


def measures_size(score: object) -> bool:
    return bool(getattr(score, "measures_size", False))


@hookimpl(tryfirst=True)  # built-ins first: a third party that reuses a name is the one named
def spikenas_register_scores(registry) -> None:
    registry.add("size", SizeScore)


class SizeCellEvaluator:
    """What the consecutive search asks of a cell evaluator
    (:class:`~spikenas.search.incremental.CellEvaluator`), for a size score: a cell's value is
    the size of its network (the cells after it at their cheapest); nothing is built or run."""

    def __init__(self, ctx: "SearchContext", prefix: tuple = ()) -> None:
        self.ctx, self.prefix = ctx, tuple(prefix)
        self.index = len(self.prefix)
        self.is_last = self.index == ctx.num_cells - 1

    def _size(self, cell) -> float:
        ctx = self.ctx
        return ctx.score.of(ctx, ctx.memory.cheapest(ctx.cells, ctx.num_cells, self.prefix + (cell,)))

    def score_many(self, cells: list, whole: bool = True) -> list[float]:
        return [self._size(cell) for cell in cells]

    def assess_many(self, cells: list) -> list:
        from spikenas.search.context import Assessment

        return [Assessment(value) for value in self.score_many(cells)]

    def following(self, cell) -> "SizeCellEvaluator":
        return SizeCellEvaluator(self.ctx, self.prefix + (cell,))
