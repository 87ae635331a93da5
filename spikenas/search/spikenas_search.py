"""``spikenas``: the consecutive, memory-aware per-cell search of SpikeNAS.

Cells are searched one after another: cell 0 with nothing after it, then cell 1 after the
best cell 0, and so on. Within a cell the search is coordinate ascent over its edges, started
from the cheapest fully connected cell: for each node pair it tries every edge the space
allows (operation and direction) with the rest of the cell fixed, and keeps the best; it
repeats for up to ``sweeps`` passes or until a pass changes nothing. Every candidate's
whole-network footprint (the cells chosen so far, the candidate, the cheapest completion of
the cells still to search) is checked against the budget before it is scored, so the final
genotype always fits. Candidates are scored by
:class:`~spikenas.search.incremental.CellEvaluator`, which reuses everything the candidate
does not change.
"""

from __future__ import annotations

import math

from spikenas.search.context import SearchContext
from spikenas.search.incremental import CellEvaluator
from spikenas.search.records import RecordLog
from spikenas.search.strategy import SearchStrategy
from spikenas.search.workers import Workers
from spikenas.space.genotype import CellGenotype, Edge, Genotype


class SpikeNASSearch(SearchStrategy):
    name = "spikenas"

    def __init__(self, sweeps: int = 2) -> None:
        super().__init__()
        self.sweeps = max(1, sweeps)

    def start_cell(self, ctx: SearchContext, prefix: tuple[CellGenotype, ...]) -> CellGenotype:
        """Every pair on the cheapest connecting operation (all nodes alive, least memory)."""
        space = ctx.cells
        connecting = [op for op in space.operations if op in space.connecting]

        def cost(op: str) -> int:
            cell = CellGenotype(space.nodes, tuple(Edge(i, j, op) for i, j in space.pairs))
            return ctx.bytes_of(ctx.memory.cheapest(space, ctx.num_cells, prefix + (cell,)))

        op = min(connecting, key=cost)
        return CellGenotype(space.nodes, tuple(Edge(i, j, op) for i, j in space.pairs))

    def run(self, ctx: SearchContext, log: RecordLog, workers: Workers) -> Genotype:
        chosen: tuple[CellGenotype, ...] = ()
        for index in range(ctx.num_cells):
            chosen += (self.search_cell(ctx, log, workers, chosen),)
        self.close()
        return Genotype(chosen)

    def search_cell(self, ctx: SearchContext, log: RecordLog, workers: Workers, prefix: tuple[CellGenotype, ...]) -> CellGenotype:
        index = len(prefix)
        stage = f"cell{index}"
        evaluator = CellEvaluator(ctx, prefix)
        space = ctx.cells

        def completed(cell: CellGenotype) -> Genotype:
            return ctx.memory.cheapest(space, ctx.num_cells, prefix + (cell,))

        def key(cell: CellGenotype) -> str:
            return f"{stage}/{Genotype(prefix + (cell,)).hash}"

        def run_cells(cells: list[CellGenotype]) -> list[float]:
            items = [(key(c), completed(c)) for c in cells]
            scores = self.evaluate(ctx, log, workers, stage, items, lambda g: evaluator.score(g.cells[index]))
            return [r.score if math.isfinite(r.score) else -math.inf for r in scores]

        current = self.start_cell(ctx, prefix)
        if not ctx.fits(completed(current)):  # e.g. no zero-cost op: fall back to the cheapest cell
            current = ctx.memory.cheapest(space, ctx.num_cells, prefix).cells[index]
        self.progress(None, workers, f"spikenas cell {index + 1}/{ctx.num_cells}")
        best = run_cells([current])[0]
        seen = {current}
        for _ in range(self.sweeps):
            moved = False
            for pair in space.pairs:
                candidates = []
                for edge in space.edge_choices(pair):
                    cell = current.replace_edge(edge)
                    if cell in seen or not space.is_valid(cell):
                        continue
                    seen.add(cell)
                    if ctx.fits(completed(cell)):
                        candidates.append(cell)
                if not candidates:
                    continue
                for cell, value in zip(candidates, run_cells(candidates)):
                    if value > best:
                        best, current, moved = value, cell, True
            if not moved:
                break
        return current
