"""What every search strategy shares: an evaluator that scores candidates, and how to rank them.

A strategy is ``run(ctx, evaluator) -> Found``. It only talks to the
:class:`~spikenas.search.context.SearchContext` (space, cost, score) and scores candidates only
through the :class:`Evaluator`, which keeps the record log (resume), splits the work across
ranks and draws the progress bar. It is deterministic given ``ctx.seed``: that is what makes
resume (replay against the record log) and multi-process runs give the same genotype.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from tqdm import tqdm

from spikenas.evaluate import Assessment
from spikenas.search.context import SearchContext
from spikenas.search.records import Record, RecordLog
from spikenas.base.workers import Workers
from spikenas.space.genotype import Genotype


ELIGIBLE, OVER_SYNOPS, NOT_FINITE = 1, 0, -1


def rank_key(ctx: SearchContext, record: Record, measured: bool) -> tuple[int, float]:
    """What the ascent maximises: ``(ELIGIBLE, score)`` for a finite score within the limits;
    ``(OVER_SYNOPS, -synops)`` for a whole network over the SynOps limit, so that the ascent
    first walks towards fewer SynOps and then towards a better score; ``(NOT_FINITE, 0)``
    last. ``measured``: the record is a whole network whose SynOps count (under a limit)."""
    if not math.isfinite(record.score):
        return NOT_FINITE, 0.0
    if measured and not ctx.within_synops(record.synops):
        return OVER_SYNOPS, -(record.synops if record.synops is not None else math.inf)
    return ELIGIBLE, record.score


def rank_value(ctx: SearchContext, record: Record) -> float:
    """What a whole-network record ranks by: its score, or ``-inf`` when the score is not
    finite or the network is over the SynOps limit (or its SynOps were not measured under one)."""
    if not math.isfinite(record.score) or not ctx.within_synops(record.synops):
        return -math.inf
    return record.score


@dataclass(frozen=True)
class Found:
    """A strategy's result: the chosen ``genotype`` and, when the strategy scored the whole
    chosen network, its ``score`` (None: the search scores it)."""

    genotype: Genotype
    score: float | None = None


class Evaluator:
    """Scores a strategy's candidates: from the record log when it has them (resume), across
    the ranks otherwise, counting them and drawing a progress bar (rank 0, ``show_progress``)."""

    def __init__(self, ctx: SearchContext, log: RecordLog, workers: Workers, show_progress: bool = True) -> None:
        self.ctx = ctx
        self.log = log
        self.workers = workers
        self.show_progress = show_progress
        self.evaluated = 0  # candidates scored in this search, replayed ones included
        self._bar: tqdm | None = None

    def progress(self, total: int | None, description: str) -> None:
        """(Re)start the progress bar."""
        self.close()
        self._bar = tqdm(total=total, desc=description, disable=not (self.workers.is_writer and self.show_progress),
                         leave=False, dynamic_ncols=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.refresh()  # the final count and best score, also where stdout is a file
            self._bar.close()
            self._bar = None

    def evaluate(
        self,
        stage: str,
        items: Sequence[tuple[str, Genotype]],
        score_fn: Callable[[Genotype], float | Assessment] | None = None,
        count: bool = True,
        score_many: Callable[[list[Genotype]], list[float | Assessment]] | None = None,
    ) -> list[Record]:
        """Records for ``items`` (``(key, genotype)``), scoring only those not in the log;
        with ``count``, each item counts as an evaluated candidate.

        ``genotype`` is what the record shows and costs; ``score_fn`` scores it (a score, or an
        :class:`~spikenas.evaluate.Assessment` with its SynOps: ``ctx.engine.assess``), or
        ``score_many`` scores a list of them at once (each record then gets an equal share of
        the time). Keys must be the same on every run with the same settings.
        """
        if (score_fn is None) == (score_many is None):
            raise TypeError("Evaluator.evaluate needs exactly one of score_fn and score_many")
        log, ctx = self.log, self.ctx
        todo = [(key, g) for key, g in items if log.get(key) is None]

        def work(chunk: list[tuple[str, Genotype]]) -> list[tuple[Assessment, float]]:
            start = time.perf_counter()
            values = score_many([g for _, g in chunk]) if score_many is not None else [score_fn(g) for _, g in chunk]
            seconds = (time.perf_counter() - start) / max(1, len(chunk))
            return [(v if isinstance(v, Assessment) else Assessment(float(v)), seconds) for v in values]

        if score_many is not None:
            results = self.workers.map_many(todo, work)
        else:
            results = self.workers.map(todo, lambda item: work([item])[0])
        log.add(
            (Record(key, stage, g.hash, str(g), a.score, ctx.bytes_of(g), seconds, a.synops)
             for (key, g), (a, seconds) in zip(todo, results)),
            writer=self.workers.is_writer,
        )
        if count:
            self.evaluated += len(items)
            if self._bar is not None:
                self._bar.update(len(items))
                best = max((r.score for r in log.records if r.stage == stage), default=float("-inf"))
                self._bar.set_postfix(best=f"{best:.4g}", refresh=False)
        return [log.get(key) for key, _ in items]  # type: ignore[misc]

    def record_final(self, found: Found) -> Record:
        """The ``final`` record: the found genotype scored on the whole network. A score the
        strategy already knows is reused (with the SynOps measured under a limit), and the
        record is then no new candidate."""
        ctx, items = self.ctx, [("final", found.genotype)]
        if found.score is None:
            return self.evaluate("final", items, ctx.engine.assess)[0]
        known = found.score
        if ctx.synops_limit is None:
            return self.evaluate("final", items, lambda _: known, count=False)[0]
        return self.evaluate("final", items, lambda g: Assessment(known, ctx.engine.assess(g).synops), count=False)[0]


class SearchStrategy:
    """Base class: subclasses implement :meth:`run`."""

    name = "strategy"

    def run(self, ctx: SearchContext, evaluator: Evaluator) -> Found:
        """The chosen genotype (and its whole-network score when the strategy knows it)."""
        raise NotImplementedError
