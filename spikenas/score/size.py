"""``size``: the network's size as the search's score, the baseline every training-free score
must beat (``spikenas analyze`` ranks accuracy by it beside the scores).

It needs no spikes and no batch: a candidate scores its ``bytes`` under the search's cost model
(``measure: bytes``, the default) or its parameter count (``measure: params``), so the search
keeps the largest network that meets the budget. It is offered because on the data measured so
far counting bytes ranked trained accuracy better than SAHD (``docs/analysis.md``). A score
with ``measures_size`` is computed by :meth:`SizeScore.of` from the genotype, so it has no
spike kernel (the search scores whole networks with it: :mod:`spikenas.search.whole`); the
analysis leaves it out of its scores (its size baselines are the same thing).
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

