"""``evolution``: memory-aware regularised evolution (Real et al., 2019; AutoSNN's search for SNNs).

A population of ``population`` random genotypes within the budget is scored on the whole
network. Then, until ``candidates`` genotypes have been scored: ``sample_size`` members are
drawn at random, the best of them is the parent, its child differs in one edge (one node pair
of one cell gets another edge the space allows: another operation or the other direction), the
child replaces the *oldest* member (ageing: a lucky early score does not rule for ever). A
child that is not a valid cell or is over the budget is redrawn before it is scored, so every
scored genotype fits. Under a SynOps limit, measured as a candidate is scored, a member over
the limit ranks below every member within it, the fewer its SynOps the higher (so the
population walks towards the limit), and is never the result. The best genotype ever scored is the result. Deterministic given the
search seed; children are scored one at a time (each depends on the population before it), so
several processes do not speed it up.
"""

from __future__ import annotations

import collections
import math
import random

from spikenas.base.errors import SpikenasError
from spikenas.plugin import hookimpl
from spikenas.search.context import SearchContext
from spikenas.search.random_search import sample_within_budget
from spikenas.search.strategy import ELIGIBLE, Evaluator, Found, SearchStrategy, rank_key
from spikenas.space.genotype import Genotype


class EvolutionSearch(SearchStrategy):
    name = "evolution"

    def __init__(self, candidates: int = 1000, population: int = 20, sample_size: int = 5, max_rejections: int = 10_000) -> None:
        if candidates < 1 or population < 1 or not 1 <= sample_size <= population:
            raise SpikenasError(
                f"evolution needs candidates >= 1, population >= 1 and 1 <= sample_size <= population; got "
                f"candidates={candidates}, population={population}, sample_size={sample_size}"
            )
        self.candidates = candidates
        self.population = population
        self.sample_size = sample_size
        self.max_rejections = max_rejections

    def mutate(self, ctx: SearchContext, parent: Genotype, rng: random.Random) -> Genotype:
        """``parent`` with one edge changed, valid and within the budget."""
        space = ctx.cells
        for _ in range(self.max_rejections):
            index = rng.randrange(len(parent.cells))
            cell = parent.cells[index]
            pair = rng.choice(space.pairs)
            current = [e for e in cell.edges if e.pair == pair]
            choices = [e for e in space.edge_choices(pair) if e not in current]
            if not choices:
                continue
            child = cell.replace_edge(rng.choice(choices))
            if space.is_valid(child):
                genotype = parent.replace_cell(index, child)
                if ctx.fits(genotype):
                    return genotype
        limit = f"the budget of {ctx.budget:,} bytes" if ctx.budget is not None else "what the cost model's hardware runs"
        raise SpikenasError(
            f"evolution search: {self.max_rejections} mutations of one network in a row were invalid or over "
            f"{limit}; raise the budget or widen the space"
        )

    def run(self, ctx: SearchContext, evaluator: Evaluator) -> Found:
        rng = random.Random(ctx.seed)
        evaluator.progress(self.candidates, "evolution")

        def value(record) -> tuple[int, float]:  # over a SynOps limit: fewer SynOps first
            return rank_key(ctx, record, measured=True)

        size = min(self.population, self.candidates)
        founders = [sample_within_budget(ctx, rng, self.max_rejections, self.name)[0] for _ in range(size)]
        records = evaluator.evaluate(self.name, [(f"evolution/{i}", g) for i, g in enumerate(founders)],
                                     score_many=ctx.engine.assess_many)
        population = collections.deque((value(r), g) for r, g in zip(records, founders))
        best = max(population, key=lambda member: member[0])
        for i in range(size, self.candidates):
            contenders = rng.sample(list(population), min(self.sample_size, len(population)))
            parent = max(contenders, key=lambda member: member[0])[1]
            child = self.mutate(ctx, parent, rng)
            record = evaluator.evaluate(self.name, [(f"evolution/{i}", child)], ctx.engine.assess)[0]
            population.append((value(record), child))
            population.popleft()
            if population[-1][0] > best[0]:
                best = population[-1]
        return Found(best[1], best[0][1] if best[0][0] == ELIGIBLE else -math.inf)


@hookimpl(tryfirst=True)  # built-ins first: a third party that reuses a name is the one named
def spikenas_register_strategies(registry) -> None:
    registry.add("evolution", EvolutionSearch)
