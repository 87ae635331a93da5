"""Everything a search strategy needs, in one place: space, cost, score, data, budget.

A strategy asks the context three questions and nothing else: what does a genotype cost
(:meth:`SearchContext.bytes_of`, no weights allocated), what does it score (the context's
scoring engine, :class:`~spikenas.evaluate.ScoringEngine`: ``ctx.engine.assess`` gives the
score and, under a SynOps limit, the SynOps measured in the same pass; or a
:func:`~spikenas.evaluate.cell_scorer`), and which cells may it try (``context.cells``). The
macro-architecture is fixed before the search starts by :func:`choose_macro`, which turns the
macro knobs down until the limits can be met.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from spikenas.cost import CostModel
from spikenas.base.units import format_bytes
from spikenas.base.errors import SpikenasError
from spikenas.evaluate import ScoringEngine
from spikenas.network.profile import Profiler
from spikenas.plugin.manager import Registries
from spikenas.plugin.registry import Registry
from spikenas.space.cell import CellSpace
from spikenas.space.config import SearchSpaceConfig, macro_options
from spikenas.space.genotype import CellGenotype, Edge, Genotype
from spikenas.space.macro import MacroConfig


class BudgetError(SpikenasError):
    """No architecture of the space fits the budget."""


def synops_unreachable(ctx: "SearchContext", log, who: str) -> BudgetError:
    """The error for a search in which no whole network met the SynOps limit: the fewest
    SynOps it measured (``log``: the :class:`~spikenas.search.records.RecordLog`)."""
    measured = [r for r in log.records if r.synops is not None]
    fewest = min(measured, key=lambda r: r.synops) if measured else None
    reached = "no network was measured" if fewest is None else (
        f"{fewest.synops:,.0f} SynOps per inference (network {fewest.hash}; {len(measured)} networks measured)")
    return BudgetError(
        f"synops limit {ctx.synops_limit:,.0f} is below the smallest value the {who} reached: {reached}; "
        f"raise the limit or narrow the space"
    )


class MemoryCheck:
    """Bytes of genotypes of one macro under a cost model, and the budget they must meet."""

    def __init__(self, macro: MacroConfig, neuron: object, registries: Registries, cost: CostModel, budget: int | None) -> None:
        """``neuron``: the network's neuron settings, handed to the profiler as they are."""
        self.profiler = Profiler(macro, neuron, registries.operations)
        self.cost = cost
        self.budget = budget
        self._cheapest: dict[tuple[int, int, int], CellGenotype] = {}
        self._reports: dict[Genotype, tuple[int, str | None]] = {}

    def _report(self, genotype: Genotype) -> tuple[int, str | None]:
        """The cost model's ``(total_bytes, refusal)`` of the whole network (remembered: a
        search checks a candidate against the budget and records its bytes; cost models are pure)."""
        known = self._reports.get(genotype)
        if known is None:
            if len(self._reports) >= 1 << 16:
                self._reports.clear()
            report = self.cost(self.profiler.profile(genotype))
            known = self._reports[genotype] = (report.total_bytes, getattr(report, "refusal", None))
        return known

    def bytes_of(self, genotype: Genotype) -> int:
        """The cost model's ``total_bytes`` of the whole network."""
        return self._report(genotype)[0]

    def refusal_of(self, genotype: Genotype) -> str | None:
        """Why the cost model's hardware does not run the network at all (its report's
        ``refusal``), or None."""
        return self._report(genotype)[1]

    def why_not(self, genotype: Genotype) -> str | None:
        """Why the network does not fit, in one line: the cost model's refusal or its bytes
        over the budget; None when it fits."""
        total, refusal = self._report(genotype)
        if refusal is not None:
            return refusal
        if self.budget is not None and total > self.budget:
            return f"{total:,} bytes, over the budget of {self.budget:,} bytes"
        return None

    def fits(self, genotype: Genotype) -> bool:
        return self.why_not(genotype) is None

    def cheapest(self, cells: CellSpace, num_cells: int, prefix: tuple[CellGenotype, ...] = ()) -> Genotype:
        """``prefix`` completed with the cheapest valid cells (cell costs are independent)."""
        return Genotype(tuple(prefix) + tuple(self._cheapest_cell(cells, i, num_cells) for i in range(len(prefix), num_cells)))

    def largest(self, cells: CellSpace, num_cells: int) -> list[Genotype]:
        """The networks whose every edge carries one connecting operation of the space, one
        per operation: the space's costliest networks are among them."""
        return [Genotype((CellGenotype(cells.nodes, tuple(Edge(i, j, op) for i, j in cells.pairs)),) * num_cells)
                for op in cells.operations if op in cells.connecting]

    def _cheapest_cell(self, cells: CellSpace, index: int, num_cells: int) -> CellGenotype:
        key = (id(cells), index, num_cells)
        if key not in self._cheapest:
            options = cells.cheapest_cells()
            filler = [options[0]] * num_cells
            def cost(cell: CellGenotype) -> tuple[bool, int]:  # a network the hardware runs first
                total, refusal = self._report(Genotype(tuple(filler[:index] + [cell] + filler[index + 1:])))
                return refusal is not None, total
            self._cheapest[key] = min(options, key=cost)
        return self._cheapest[key]


@dataclass
class SearchContext:
    """A search's fixed ingredients: data and cost questions. Candidates are scored by its
    ``engine``.

    Attributes:
        macro: the macro-architecture every candidate uses.
        cells: the cell space; ``num_cells`` cells per genotype.
        memory: bytes of a genotype and the budget (bytes; None = no limit).
        engine: the scoring engine (:class:`~spikenas.evaluate.ScoringEngine`: the score, the
            scoring batches, building and running candidates).
        seed: sampling seed (the engine's weight-initialisation seed too).
        synops_limit: SynOps per inference the network may use (None = no limit); whole
            networks are then assessed with their SynOps.
    """

    macro: MacroConfig
    cells: CellSpace
    num_cells: int
    memory: MemoryCheck
    engine: ScoringEngine
    seed: int
    synops_limit: float | None = None

    @property
    def budget(self) -> int | None:
        return self.memory.budget

    @property
    def operations(self) -> Registry:
        """The operation registry (which edges of a cell are alive)."""
        return self.engine.operations

    def bytes_of(self, genotype: Genotype) -> int:
        return self.memory.bytes_of(genotype)

    def fits(self, genotype: Genotype) -> bool:
        return self.memory.fits(genotype)

    def completed(self, prefix: tuple[CellGenotype, ...] = ()) -> Genotype:
        """``prefix`` completed with the cheapest cells."""
        return self.memory.cheapest(self.cells, self.num_cells, prefix)

    def within_synops(self, synops: float | None) -> bool:
        """Whether a candidate may be chosen under the SynOps limit: True without a limit,
        False when its SynOps were not measured or exceed the limit."""
        return self.synops_limit is None or (synops is not None and synops <= self.synops_limit)


def choose_macro(
    base: MacroConfig,
    space: SearchSpaceConfig,
    neuron: object,
    registries: Registries,
    cells: CellSpace,
    cost: CostModel,
    budget: int | None,
    headroom: float = 0.5,
    synops_limit: float | None = None,
    synops_of: Callable[[MacroConfig, Genotype], float] | None = None,
) -> MacroConfig:
    """The largest macro whose cheapest network leaves ``headroom`` of every limit to the cells.

    The limits are ``budget`` (bytes), what the cost model's hardware runs at all (a report's
    ``refusal``: a macro whose cheapest network it refuses is never chosen) and, with
    ``synops_of(macro, genotype)`` (SynOps measured on the scoring batches), ``synops_limit``.
    Falls back to the largest macro that meets them at all. No macro within the budget:
    :class:`BudgetError` stating the smallest reachable footprint; no macro the hardware runs:
    :class:`BudgetError` stating why. No cheapest network within the SynOps limit: the macro
    whose cheapest network has the fewest SynOps (the cheapest network in bytes is not the one
    with the fewest SynOps, so the search itself finds out whether the limit can be met).
    """
    options = macro_options(base, space)
    shaped, fitting, by_synops, refused = [], [], [], []
    for macro in options:
        try:
            macro.head_features(space.cells)
        except SpikenasError:
            continue
        memory = MemoryCheck(macro, neuron, registries, cost, budget)
        cheapest = memory.cheapest(cells, space.cells)
        minimum = memory.bytes_of(cheapest)
        if memory.refusal_of(cheapest) is not None:
            refused.append((macro, memory.refusal_of(cheapest)))
            continue
        if budget is None and synops_limit is None:
            return macro
        shaped.append((macro, minimum))
        if budget is not None and minimum > budget:
            continue
        floor = None
        if synops_limit is not None and synops_of is not None:
            floor = synops_of(macro, cheapest)
            by_synops.append((floor, macro))
            if floor > synops_limit:
                continue
        fitting.append(macro)
        if (budget is None or minimum <= budget * (1 - headroom)) and (floor is None or floor <= synops_limit * (1 - headroom)):
            return macro
    if fitting:
        return fitting[0]
    if by_synops:
        return min(by_synops, key=lambda item: item[0])[1]
    if not shaped and refused:
        smallest, refusal = refused[-1]
        raise BudgetError(f"cost model {getattr(cost, 'name', '?')!r} runs no network of the space: the cheapest network at "
                          f"macro channels={smallest.channels}, head_hidden={smallest.head_hidden}, "
                          f"head_pool={smallest.head_pool} does not run ({refusal}); narrow the space")
    if budget is None and synops_limit is None:
        return options[0]  # no macro holds the cells: building the network says which knob
    if not shaped:
        raise BudgetError(f"no macro option fits the input with {space.cells} cells")
    smallest, minimum = min(shaped, key=lambda item: item[1])
    raise BudgetError(
        f"budget {budget:,} bytes ({format_bytes(budget)}) is below the smallest reachable footprint "
        f"{minimum:,} bytes ({format_bytes(minimum)}: channels={smallest.channels}, "
        f"head_hidden={smallest.head_hidden}, head_pool={smallest.head_pool}, cheapest cells)"
    )
