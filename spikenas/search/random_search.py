"""``random``: SNASNet's baseline, N random genotypes within the budget, best score wins.

Genotypes are drawn with replacement, as in SNASNet; one over the budget is discarded before
it is scored and does not count. Every kept candidate is scored on the whole network; under a
SynOps limit its SynOps are measured in the same pass, and one over the limit cannot win.
``sampler``: ``uniform`` (each cell drawn uniformly among the valid cells of the space,
independently) or ``snasnet`` (SNASNet's own: one cell drawn by its ``connection_matrix_gen``
rules, shared by every cell position).
"""

from __future__ import annotations

import random

from spikenas.base.errors import SpikenasError
from spikenas.plugin import hookimpl
from spikenas.search.context import SearchContext
from spikenas.search.strategy import Evaluator, Found, SearchStrategy, rank_value
from spikenas.space.genotype import Genotype


SAMPLERS = ("uniform", "snasnet")


def draw(ctx: SearchContext, rng: random.Random, sampler: str = "uniform") -> Genotype:
    """One genotype of the space (budget not checked); see the module docstring for ``sampler``."""
    if sampler == "snasnet":
        return Genotype((ctx.cells.sample_snasnet(rng),) * ctx.num_cells)
    return Genotype(tuple(ctx.cells.sample(rng) for _ in range(ctx.num_cells)))


def sample_within_budget(ctx: SearchContext, rng: random.Random, max_rejections: int, who: str,
                         sampler: str = "uniform") -> tuple[Genotype, int]:
    """A genotype drawn by ``sampler`` and redrawn while over the budget; returns it and the
    number of rejected draws. More than ``max_rejections`` rejections is a one-line error
    naming ``who``."""
    rejected = 0
    while True:
        genotype = draw(ctx, rng, sampler)
        if ctx.fits(genotype):
            return genotype, rejected
        rejected += 1
        if rejected > max_rejections:
            raise SpikenasError(
                f"{who} search: {rejected} samples in a row did not fit (the last: {ctx.memory.why_not(genotype)}); "
                "raise the budget or narrow the space"
            )


class RandomSearch(SearchStrategy):
    name = "random"

    def __init__(self, candidates: int = 5000, chunk: int = 32, max_rejections: int = 100_000, sampler: str = "uniform") -> None:
        if candidates < 1:
            raise SpikenasError(f"random search needs candidates >= 1, got {candidates}")
        if sampler not in SAMPLERS:
            raise SpikenasError(f"unknown random sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
        self.sampler = sampler
        self.candidates = candidates
        self.chunk = chunk
        self.max_rejections = max_rejections
        self.rejected = 0

    def sample(self, ctx: SearchContext, rng: random.Random) -> Genotype:
        """One genotype within the budget (rejection sampling)."""
        genotype, rejected = sample_within_budget(ctx, rng, self.max_rejections, self.name, self.sampler)
        self.rejected += rejected
        return genotype

    def run(self, ctx: SearchContext, evaluator: Evaluator) -> Found:
        rng = random.Random(ctx.seed)
        evaluator.progress(self.candidates, "random search")
        best: tuple[float, Genotype] | None = None
        done = 0
        while done < self.candidates:
            batch = [self.sample(ctx, rng) for _ in range(min(self.chunk, self.candidates - done))]
            items = [(f"random/{done + i}", g) for i, g in enumerate(batch)]
            records = evaluator.evaluate("random", items, score_many=ctx.engine.assess_many)
            for genotype, record in zip(batch, records):
                value = rank_value(ctx, record)
                if best is None or value > best[0]:
                    best = (value, genotype)
            done += len(batch)
        assert best is not None
        return Found(best[1], best[0])


@hookimpl(tryfirst=True)  # built-ins first: a third party that reuses a name is the one named
def spikenas_register_strategies(registry) -> None:
    registry.add("random", RandomSearch)
