"""``spikenas``: the consecutive, memory-aware per-cell search of SpikeNAS.

Cells are searched one after another: cell 0, then cell 1 after the chosen cell 0, and so on.
Within a cell the search is coordinate ascent over its edges, started from the cheapest fully
connected cell: for each node pair it tries every edge the space allows (operation and
direction) with the rest of the cell fixed, and keeps the best; it repeats for up to
``sweeps`` passes (``last_sweeps`` for the last cell, whose moves are the cheapest and are
scored on the whole network) or until a pass changes nothing. The ascent ranks candidates by their
*local* score (the network up to the first LIF layer after the cell: cheap); for every cell
but the last, the ``rerank`` best distinct cells it met are then scored on the *whole* network
(later cells at their cheapest) and the best of those is kept. For the last cell the local
score is the whole network's score. Every candidate's
whole-network footprint (the cells chosen so far, the candidate, the cheapest completion of
the cells still to search) is checked against the budget before it is scored, so the final
genotype always fits. A SynOps limit can only be checked once a whole network has run. The
last cell's candidates are whole networks: while the current cell is over the limit the ascent
moves towards fewer SynOps, then towards a better score among the cells within it
(:func:`rank_key`). For the other cells the finalists are always re-scored on the whole network
with their SynOps (the later cells at their cheapest) and the best one within the limit is
kept, further cells in local-score order being re-scored while none is. A search that meets
no network within the limit stops with an error giving the fewest SynOps it measured. Candidates are scored by
:func:`~spikenas.evaluate.cell_scorer` (for kernel scores an incremental evaluator that reuses
everything the candidate does not change and scores a move's candidates in one call).
"""

from __future__ import annotations

import math

from spikenas.plugin import hookimpl
from spikenas.search.context import SearchContext, synops_unreachable
from spikenas.evaluate import CellScorer, cell_scorer
from spikenas.search.strategy import ELIGIBLE, Evaluator, Found, SearchStrategy, rank_key
from spikenas.space.cell import live_edges
from spikenas.space.genotype import CellGenotype, Edge, Genotype


class SpikeNASSearch(SearchStrategy):
    name = "spikenas"

    def __init__(self, sweeps: int = 1, last_sweeps: int = 2, rerank: int = 3) -> None:
        self.sweeps = max(1, sweeps)
        self.last_sweeps = max(1, last_sweeps)
        self.rerank = max(1, rerank)

    def start_cell(self, ctx: SearchContext, prefix: tuple[CellGenotype, ...]) -> CellGenotype:
        """Every pair on the cheapest connecting operation (all nodes alive, least memory)."""
        space = ctx.cells
        connecting = [op for op in space.operations if op in space.connecting]

        def cost(op: str) -> int:
            cell = CellGenotype(space.nodes, tuple(Edge(i, j, op) for i, j in space.pairs))
            return ctx.bytes_of(ctx.completed(prefix + (cell,)))

        op = min(connecting, key=cost)
        return CellGenotype(space.nodes, tuple(Edge(i, j, op) for i, j in space.pairs))

    def run(self, ctx: SearchContext, evaluator: Evaluator) -> Found:
        scorer = cell_scorer(ctx.engine)
        while True:
            cell, score = self.search_cell(ctx, evaluator, scorer)
            if scorer.is_last:
                return Found(Genotype(scorer.prefix + (cell,)), score)  # the last cell's score is the whole network's
            scorer = scorer.following(cell)  # from where the chosen cell's whole-network scoring left off

    def search_cell(self, ctx: SearchContext, evaluator: Evaluator,
                    scorer: CellScorer) -> tuple[CellGenotype, float | None]:
        """The cell ``scorer`` scores (position ``scorer.index``, after ``scorer.prefix``) and,
        for the last cell, the whole network's score."""
        prefix, index = scorer.prefix, scorer.index
        stage = f"cell{index}"
        space = ctx.cells

        def completed(cell: CellGenotype) -> Genotype:
            return ctx.completed(prefix + (cell,))

        def run_cells(candidates: list[CellGenotype], whole: bool = False, tag: str = stage) -> list[tuple[int, float]]:
            measure = ctx.synops_limit is not None and (whole or scorer.is_last)  # SynOps of whole networks
            items = [(f"{tag}/{Genotype(prefix + (c,)).hash}", completed(c)) for c in candidates]

            def score(genotypes: list[Genotype]) -> list:  # a move's candidates at once
                cells = [g.cells[index] for g in genotypes]
                return scorer.assess_many(cells) if measure else scorer.score_many(cells, whole)
            return [rank_key(ctx, r, measure) for r in evaluator.evaluate(tag, items, score_many=score)]

        current = self.start_cell(ctx, prefix)
        if not ctx.fits(completed(current)):  # e.g. no zero-cost op: fall back to the cheapest cell
            current = ctx.completed(prefix).cells[index]
        evaluator.progress(None, f"spikenas cell {index + 1}/{ctx.num_cells}")
        best = run_cells([current])[0]
        met: list[tuple[tuple[int, float], CellGenotype]] = [(best, current)]

        def network_of(cell: CellGenotype) -> frozenset:
            # cells with the same live edges build the same network: score one of them
            return frozenset(live_edges(cell, ctx.operations))

        seen = {network_of(current)}
        for _ in range(self.last_sweeps if scorer.is_last else self.sweeps):
            moved = False
            for pair in space.pairs:
                candidates = []
                for edge in space.edge_choices(pair):
                    cell = current.replace_edge(edge)
                    if not space.is_valid(cell) or network_of(cell) in seen:
                        continue
                    seen.add(network_of(cell))
                    if ctx.fits(completed(cell)):
                        candidates.append(cell)
                if not candidates:
                    continue
                for cell, value in zip(candidates, run_cells(candidates)):
                    met.append((value, cell))
                    if value > best:
                        best, current, moved = value, cell, True
            if not moved:
                break
        if scorer.is_last:
            return current, (best[1] if best[0] == ELIGIBLE else -math.inf)  # the last stage scores the whole network
        if self.rerank == 1 and ctx.synops_limit is None:
            return current, None
        ranked = [cell for _, cell in sorted(met, key=lambda item: item[0], reverse=True)]
        for start in range(0, len(ranked), self.rerank):  # past the first rerank only if over the SynOps limit
            finalists = ranked[start:start + self.rerank]
            whole = run_cells(finalists, whole=True, tag=f"{stage}/whole")
            chosen = max(range(len(finalists)), key=lambda i: whole[i])
            if ctx.synops_limit is None or whole[chosen][0] == ELIGIBLE:
                return finalists[chosen], None
        raise synops_unreachable(ctx, evaluator.log, f"{self.name} search (cell {index})")


@hookimpl(tryfirst=True)  # built-ins first: a third party that reuses a name is the one named
def spikenas_register_strategies(registry) -> None:
    registry.add("spikenas", SpikeNASSearch)
