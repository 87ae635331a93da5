"""What every search strategy shares: scoring through the record log, and a progress bar.

A strategy only talks to the :class:`~spikenas.search.context.SearchContext` (space, cost,
score) and never names an operation. It is deterministic given ``ctx.seed``: that is what
makes resume (replay against the record log) and multi-process runs give the same genotype.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

from tqdm import tqdm

from spikenas.search.context import Assessment, SearchContext
from spikenas.search.records import Record, RecordLog
from spikenas.search.workers import Workers
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


class SearchStrategy:
    """Base class: subclasses implement :meth:`run` and call :meth:`evaluate`."""

    name = "strategy"

    def __init__(self) -> None:
        self.evaluated = 0  # candidates scored in this search, replayed ones included
        self.best_score: float | None = None  # the whole-network score of the result, if known
        self.show_progress = True  # the driver follows --trainer.enable_progress_bar
        self._bar: tqdm | None = None

    def run(self, ctx: SearchContext, log: RecordLog, workers: Workers) -> Genotype:
        """The chosen genotype; sets ``best_score`` when it scored the whole chosen network."""
        raise NotImplementedError

    def progress(self, total: int | None, workers: Workers, description: str) -> None:
        """(Re)start the progress bar (rank 0 only, and only when ``show_progress``)."""
        self.close()
        self._bar = tqdm(total=total, desc=description, disable=not (workers.is_writer and self.show_progress),
                         leave=False, dynamic_ncols=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def evaluate(
        self,
        ctx: SearchContext,
        log: RecordLog,
        workers: Workers,
        stage: str,
        items: Sequence[tuple[str, Genotype]],
        score_fn: Callable[[Genotype], float | Assessment],
        count: bool = True,
    ) -> list[Record]:
        """Records for ``items`` (``(key, genotype)``), scoring only those not in the log;
        with ``count``, each item counts as an evaluated candidate.

        ``genotype`` is what the record shows and costs; ``score_fn`` scores it (a score, or an
        :class:`~spikenas.search.context.Assessment` with its SynOps: ``ctx.assess``).
        """
        todo = [(key, g) for key, g in items if log.get(key) is None]

        def work(item: tuple[str, Genotype]) -> tuple[Assessment, float]:
            start = time.perf_counter()
            value = score_fn(item[1])
            assessed = value if isinstance(value, Assessment) else Assessment(float(value))
            return assessed, time.perf_counter() - start

        results = workers.map(todo, work)
        log.add(
            (Record(key, stage, g.hash, str(g), a.score, ctx.bytes_of(g), seconds, a.synops)
             for (key, g), (a, seconds) in zip(todo, results)),
            writer=workers.is_writer,
        )
        if count:
            self.evaluated += len(items)
            if self._bar is not None:
                self._bar.update(len(items))
                best = max((r.score for r in log.records if r.stage == stage), default=float("-inf"))
                self._bar.set_postfix(best=f"{best:.4g}", refresh=False)
        return [log.get(key) for key, _ in items]  # type: ignore[misc]

    @staticmethod
    def rank_value(ctx: SearchContext, record: Record) -> float:
        """What a record ranks by: its score, or ``-inf`` when the score is not finite or the
        network is over the SynOps limit (or its SynOps were not measured under one)."""
        if not math.isfinite(record.score) or not ctx.within_synops(record.synops):
            return -math.inf
        return record.score

    def record_final(self, ctx: SearchContext, log: RecordLog, workers: Workers, genotype: Genotype) -> Record:
        """The ``final`` record: ``genotype`` scored on the whole network. A strategy that
        already knows that score (``best_score``) reuses it, and the record is then no new
        candidate."""
        items = [("final", genotype)]
        known = self.best_score
        if known is None:
            return self.evaluate(ctx, log, workers, "final", items, ctx.assess)[0]
        if ctx.synops_limit is None:
            return self.evaluate(ctx, log, workers, "final", items, lambda _: known, count=False)[0]
        return self.evaluate(ctx, log, workers, "final", items, lambda g: Assessment(known, ctx.assess(g).synops), count=False)[0]
