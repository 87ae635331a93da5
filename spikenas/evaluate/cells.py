"""The cell scorer a score needs: the one place that picks how a search's candidates are scored."""

from __future__ import annotations

from spikenas.evaluate.engine import ScoringEngine
from spikenas.evaluate.incremental import CellEvaluator
from spikenas.evaluate.protocol import CellScorer
from spikenas.evaluate.whole_network import SynOpsCellEvaluator, WholeCellEvaluator
from spikenas.score import Evaluation


def cell_scorer(engine: ScoringEngine) -> CellScorer:
    """The scorer of the first cell's candidates: incremental for a kernel score
    (:class:`CellEvaluator`: reuses everything a candidate does not change), an incremental
    SynOps count for :attr:`~Evaluation.SYNOPS` (:class:`SynOpsCellEvaluator`), whole networks
    for any other score (:class:`WholeCellEvaluator`). ``following(cell)`` gives the next cell's."""
    kind = engine.evaluation
    if kind is Evaluation.SPIKE_KERNEL:
        return CellEvaluator(engine, ())
    if kind is Evaluation.SYNOPS:
        return SynOpsCellEvaluator(engine)
    return WholeCellEvaluator(engine)
