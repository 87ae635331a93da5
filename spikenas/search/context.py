"""Everything a search strategy needs, in one place: space, cost, score, data, budget.

A strategy asks the context three questions and nothing else: what does a genotype cost
(:meth:`SearchContext.bytes_of`, no weights allocated), what does it score
(:meth:`SearchContext.full_score`, or the per-cell evaluator), and which cells may it try
(``context.cells``). The macro-architecture is fixed before the search starts by
:func:`choose_macro`, which turns the macro knobs down until the budget can be met.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from spikenas.cost import CostModel, format_bytes
from spikenas.errors import SpikenasError
from spikenas.network import SpikingNetwork
from spikenas.neuron import NeuronConfig
from spikenas.plugin.manager import Registries
from spikenas.score import KernelScore, score_network
from spikenas.search.config import SearchSpaceConfig
from spikenas.space.cell import CellSpace
from spikenas.space.genotype import CellGenotype, Edge, Genotype
from spikenas.space.macro import MacroConfig
from spikenas.space.profile import Profiler


class BudgetError(SpikenasError):
    """No architecture of the space fits the budget."""


class MemoryCheck:
    """Bytes of genotypes of one macro under a cost model, and the budget they must meet."""

    def __init__(self, macro: MacroConfig, neuron: NeuronConfig, registries: Registries, cost: CostModel, budget: int | None) -> None:
        self.profiler = Profiler(macro, neuron, registries.operations)
        self.cost = cost
        self.budget = budget
        self._cheapest: dict[tuple[int, int, int], CellGenotype] = {}

    def bytes_of(self, genotype: Genotype) -> int:
        """The cost model's ``total_bytes`` of the whole network."""
        return self.cost(self.profiler.profile(genotype)).total_bytes

    def fits(self, genotype: Genotype) -> bool:
        return self.budget is None or self.bytes_of(genotype) <= self.budget

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
            def cost(cell: CellGenotype) -> int:
                return self.bytes_of(Genotype(tuple(filler[:index] + [cell] + filler[index + 1:])))
            self._cheapest[key] = min(options, key=cost)
        return self._cheapest[key]


@dataclass
class SearchContext:
    """A search's fixed ingredients.

    Attributes:
        macro: the macro-architecture every candidate uses.
        neuron: LIF settings.
        registries: operation / cost-model / score registries.
        cells: the cell space; ``num_cells`` cells per genotype.
        memory: bytes of a genotype and the budget (bytes; None = no limit).
        score: the training-free score; ``batches`` the scoring images, each ``[B, c, H, W]``.
        seed: weight-initialisation and sampling seed.
    """

    macro: MacroConfig
    neuron: NeuronConfig
    registries: Registries
    cells: CellSpace
    num_cells: int
    memory: MemoryCheck
    score: KernelScore
    batches: list[torch.Tensor]
    seed: int

    @property
    def device(self) -> torch.device:
        return self.batches[0].device

    @property
    def budget(self) -> int | None:
        return self.memory.budget

    def bytes_of(self, genotype: Genotype) -> int:
        return self.memory.bytes_of(genotype)

    def fits(self, genotype: Genotype) -> bool:
        return self.memory.fits(genotype)

    def build(self, genotype: Genotype) -> SpikingNetwork:
        """The network of ``genotype``, seeded per part, on the scoring device."""
        return SpikingNetwork(genotype, self.macro, self.neuron, self.registries.operations, seed=self.seed).to(self.device)

    def full_score(self, genotype: Genotype) -> float:
        """The score of the whole network (mean over the scoring batches)."""
        return score_network(self.build(genotype), self.batches, self.score)


def macro_options(base: MacroConfig, space: SearchSpaceConfig) -> list[MacroConfig]:
    """Every macro the knobs allow, largest first (width, then hidden size, then less pooling)."""
    channels = sorted(set(space.channels or [base.channels]), reverse=True)
    hidden = sorted(set(space.head_hidden or [base.head_hidden]), reverse=True)
    pools = sorted(set(space.head_pool or [base.head_pool]))
    return [base.replace(channels=c, head_hidden=h, head_pool=p) for c, h, p in itertools.product(channels, hidden, pools)]


def choose_macro(
    base: MacroConfig,
    space: SearchSpaceConfig,
    neuron: NeuronConfig,
    registries: Registries,
    cells: CellSpace,
    cost: CostModel,
    budget: int | None,
    headroom: float = 0.5,
) -> MacroConfig:
    """The largest macro whose cheapest network leaves ``headroom`` of the budget to the cells.

    Falls back to the largest macro that fits at all; raises :class:`BudgetError` stating the
    smallest reachable footprint when none does.
    """
    options = macro_options(base, space)
    if budget is None:
        return options[0]
    feasible: list[tuple[MacroConfig, int]] = []
    for macro in options:
        try:
            macro.head_features(space.cells)
        except SpikenasError:
            continue
        memory = MemoryCheck(macro, neuron, registries, cost, budget)
        minimum = memory.bytes_of(memory.cheapest(cells, space.cells))
        feasible.append((macro, minimum))
        if minimum <= budget * (1 - headroom):
            return macro
    fitting = [macro for macro, minimum in feasible if minimum <= budget]
    if fitting:
        return fitting[0]
    if not feasible:
        raise BudgetError(f"no macro option fits the input with {space.cells} cells")
    smallest, minimum = min(feasible, key=lambda item: item[1])
    raise BudgetError(
        f"budget {budget:,} bytes ({format_bytes(budget)}) is below the smallest reachable footprint "
        f"{minimum:,} bytes ({format_bytes(minimum)}: channels={smallest.channels}, "
        f"head_hidden={smallest.head_hidden}, head_pool={smallest.head_pool}, cheapest cells)"
    )

