"""The plan of an analysis: every network it trains, and why (its roles), decided before training.

One macro serves every study: the largest the search would choose for the largest cell count
studied, so that 1, 2 and 3 cells are compared at the same macro and every network fits the
budget. The networks are:

- ``random``: random genotypes of the full space within the budget (SNASNet's sampler: every
  cell uniformly among valid cells, rejection above the budget);
- ``stratum``: random genotypes of the full space filling at least ``studies.stratum_fill`` of
  the budget (the same sampler, rejection outside that band): the networks a budget-filling
  search chooses among, which uniform draws rarely reach when the budget is loose;
- ``without:<op>`` / ``only:<op>``: random genotypes of the space without ``op``, and of cells
  whose edges are ``op`` or a non-connecting operation (``zero``: it drops an edge, so
  topologies still vary);
- ``cells:<n>``: the network the ``spikenas`` search finds with ``n`` cells;
- ``found``: the network the search finds with the configured cell count.

A network drawn twice (the same genotype and macro) is trained once and carries both roles.
Every draw is seeded by the analysis seed and the arm's name, so every process (and every
rerun) plans the same networks.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace

from spikenas.cost import CostModel
from spikenas.base.errors import SpikenasError
from spikenas.evaluate import ScoringEngine
from spikenas.neuron import NeuronConfig
from spikenas.plugin.manager import Registries
from spikenas.score import KernelScore
from spikenas.space.config import SearchSpaceConfig
from spikenas.search.context import BudgetError, MemoryCheck, SearchContext, choose_macro
from spikenas.search.records import RecordLog
from spikenas.search.consecutive import SpikeNASSearch
from spikenas.search.strategy import Evaluator
from spikenas.base.workers import Workers
from spikenas.space.cell import CellSpace
from spikenas.space.genotype import Genotype
from spikenas.space.macro import MacroConfig
from spikenas.analysis.settings import Studies
from spikenas.base.units import format_bytes

MAX_REJECTIONS = 20_000


@dataclass
class PlannedNetwork:
    """A network to train: genotype, macro, footprint (bytes under the run's cost model) and
    the roles it plays (``random``, ``without:skip``, ``cells:2``, ``found``...)."""

    genotype: Genotype
    macro: MacroConfig
    bytes: int
    roles: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Identity of the network: genotype hash and macro."""
        m = self.macro
        return f"{self.genotype.hash}-c{m.channels}h{m.head_hidden}p{m.head_pool}t{m.timesteps}"


@dataclass(frozen=True)
class CellSearch:
    """The ``spikenas`` search of one cell count: what it found and how long it took."""

    cells: int
    genotype: Genotype
    score: float
    bytes: int
    seconds: float
    candidates: int


@dataclass
class Plan:
    """Every network of the analysis (in training order) and the cell-count searches."""

    macro: MacroConfig
    networks: list[PlannedNetwork]
    searches: dict[int, CellSearch]
    arms: dict[str, list[str]]  # arm -> operations of its space (impact study)
    budget: int | None = None  # bytes, as the plan was made for

    def with_role(self, role: str) -> list[PlannedNetwork]:
        return [n for n in self.networks if role in n.roles]


class Planner:
    """Builds the :class:`Plan` from the analysis settings (no training)."""

    def __init__(
        self,
        base_macro: MacroConfig,
        neuron: NeuronConfig,
        space: SearchSpaceConfig,
        studies: Studies,
        registries: Registries,
        cost: CostModel,
        budget: int | None,
        scorer: KernelScore,
        batches: list,
        seed: int,
        sweeps: int = 1,
        last_sweeps: int = 2,
        rerank: int = 3,
        show_progress: bool = True,
    ) -> None:
        self.show_progress = show_progress  # the cell searches' progress bars
        self.neuron = neuron
        self.space = space
        self.studies = studies
        self.registries = registries
        self.cost = cost
        self.budget = budget
        self.scorer = scorer
        self.batches = batches
        self.seed = seed
        self.search_options = dict(sweeps=sweeps, last_sweeps=last_sweeps, rerank=rerank)
        self.full = CellSpace(space.operations, registries.operations, space.nodes, space.backward, space.direct_edge)
        most = max([space.cells] + (studies.cells if "cells" in studies.run else []))
        self.macro = choose_macro(base_macro, replace(space, cells=most), neuron, registries, self.full, cost, budget)
        self.memory = MemoryCheck(self.macro, neuron, registries, cost, budget)
        self._networks: dict[str, PlannedNetwork] = {}

    # -- arms --------------------------------------------------------------------------------
    def impact_arms(self) -> dict[str, list[str]]:
        """``without:<op>`` and ``only:<op>`` arms and their operations (arms that cannot connect
        a cell are left out: without the only connecting operation; only a non-connecting one)."""
        connecting = self.full.connecting
        ops = list(self.full.operations)
        silent = [op for op in ops if op not in connecting]
        arms: dict[str, list[str]] = {}
        for op in ops:
            without = [o for o in ops if o != op]
            if any(o in connecting for o in without):
                arms[f"without:{op}"] = without
        for op in ops:
            if op in connecting:
                arms[f"only:{op}"] = [op] + silent
        return arms

    def draw(self, arm: str, operations: list[str], count: int, least: int = 0) -> list[Genotype]:
        """``count`` random genotypes of the space restricted to ``operations`` within the budget
        and of at least ``least`` bytes."""
        cells = CellSpace(operations, self.registries.operations, self.space.nodes, self.space.backward, self.space.direct_edge)
        n = self.space.cells
        cheapest = self.memory.bytes_of(self.memory.cheapest(cells, n))
        if self.budget is not None and cheapest > self.budget:
            raise BudgetError(
                f"study arm {arm!r}: no network fits the budget of {self.budget:,} bytes (its cheapest is "
                f"{cheapest:,} bytes, {format_bytes(cheapest)}, at channels={self.macro.channels})"
            )
        rng = random.Random(f"{self.seed}/{arm}")
        drawn: list[Genotype] = []
        rejected = 0
        while len(drawn) < count:
            genotype = Genotype(tuple(cells.sample(rng) for _ in range(n)))
            if self.memory.fits(genotype) and (not least or self.memory.bytes_of(genotype) >= least):
                drawn.append(genotype)
                continue
            rejected += 1
            if rejected > MAX_REJECTIONS:
                if least:
                    raise BudgetError(f"study arm {arm!r}: {MAX_REJECTIONS:,} random networks in a row were outside "
                                      f"{least:,}-{self.budget:,} bytes; lower studies.stratum_fill or set studies.stratum_networks to 0")
                raise BudgetError(
                    f"study arm {arm!r}: {MAX_REJECTIONS:,} random networks in a row did not fit (the last: "
                    f"{self.memory.why_not(genotype)}); raise the budget or narrow the space"
                )
        return drawn

    # -- searches ----------------------------------------------------------------------------
    def search_cells(self, cells: int, workers: Workers) -> CellSearch:
        """Run the ``spikenas`` strategy with ``cells`` cells at the analysis macro."""
        memory, full = self.memory, self.full
        engine = ScoringEngine(self.macro, cells, self.neuron, self.registries.operations, self.scorer, self.batches, self.seed,
                               complete=lambda prefix: memory.cheapest(full, cells, prefix), bytes_of=memory.bytes_of)
        ctx = SearchContext(self.macro, self.full, cells, self.memory, engine, self.seed)
        evaluator = Evaluator(ctx, RecordLog(), workers, self.show_progress)
        start = time.perf_counter()
        try:
            found = SpikeNASSearch(**self.search_options).run(ctx, evaluator)
        finally:
            evaluator.close()
        seconds = time.perf_counter() - start
        score = found.score if found.score is not None else engine.full_score(found.genotype)
        return CellSearch(cells, found.genotype, float(score), ctx.bytes_of(found.genotype), seconds, evaluator.evaluated)

    # -- the plan ----------------------------------------------------------------------------
    def add(self, genotype: Genotype, role: str) -> None:
        network = PlannedNetwork(genotype, self.macro, self.memory.bytes_of(genotype))
        network = self._networks.setdefault(network.key, network)
        if role not in network.roles:
            network.roles.append(role)

    def plan(self, workers: Workers | None = None) -> Plan:
        """Every network, found ones first, then random, then the stratum (so the correlation and
        baseline studies are complete first), then the impact arms."""
        workers = workers or Workers.current()
        run = self.studies.run
        searches: dict[int, CellSearch] = {}
        if "cells" in run:
            for cells in self.studies.cells:
                searches[cells] = self.search_cells(cells, workers)
                self.add(searches[cells].genotype, f"cells:{cells}")
        if "baseline" in run:
            if self.space.cells not in searches:
                searches[self.space.cells] = self.search_cells(self.space.cells, workers)
            self.add(searches[self.space.cells].genotype, "found")
        for genotype in self.draw("random", list(self.full.operations), self.studies.random_count()):
            self.add(genotype, "random")
        stratum = self.studies.stratum_count(self.budget)
        if stratum:
            least = self.studies.stratum_least(self.budget)
            for genotype in self.draw("stratum", list(self.full.operations), stratum, least):
                self.add(genotype, "stratum")
        arms: dict[str, list[str]] = {}
        if "impact" in run:
            arms = self.impact_arms()
            for arm, operations in arms.items():
                for genotype in self.draw(arm, operations, self.studies.impact_draws):
                    self.add(genotype, arm)
        if not self._networks:
            raise SpikenasError("the analysis plans no network to train")
        return Plan(self.macro, list(self._networks.values()), searches, arms, self.budget)
