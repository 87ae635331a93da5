"""``size``: the network's size as the search's score, the baseline every training-free score
must beat (``spikenas analyze`` ranks accuracy by the same measures beside the scores).

A candidate scores its ``bytes`` under the search's cost model (``measure: bytes``, the
default; nothing is built or run), its parameter count (``measure: params``; nothing run), or
its SynOps per inference at initialisation on the scoring batches (``measure: synops``: spikes
x fan-out, batch norm on batch statistics, as ``spikenas analyze``'s ``size_synops``). The
scoring engine (:mod:`spikenas.evaluate`) computes each: bytes and parameters from the genotype
(:meth:`SizeScore.of`), SynOps by counting spikes, in the consecutive search incrementally,
reusing what a candidate does not change. The search then keeps the largest (or busiest)
network that meets the budget. It is offered because on the networks measured so far these
measures ranked trained accuracy at least as well as SAHD (``docs/analysis.md``); the analysis
leaves it out of its scores (its size baselines are the same measures).
"""

from __future__ import annotations

from spikenas.base.errors import SpikenasError
from spikenas.plugin import hookimpl
from spikenas.score import Evaluation

MEASURES = ("bytes", "params", "synops")


class SizeScore:
    """Size as a score (see the module docstring)."""

    def __init__(self, measure: str = "bytes") -> None:
        if measure not in MEASURES:
            raise SpikenasError(f"score 'size': measure must be one of {', '.join(MEASURES)}, got {measure!r}")
        self.name = "size"
        self.measure = measure

    def evaluation(self) -> Evaluation:
        """:attr:`~Evaluation.SYNOPS` for ``measure: synops`` (spikes are counted), else
        :attr:`~Evaluation.SIZE` (from the genotype: :meth:`of`)."""
        return Evaluation.SYNOPS if self.measure == "synops" else Evaluation.SIZE

    def of(self, bytes: int, params: int) -> float:
        """The score of a network of ``bytes`` (under the search's cost model) and ``params``."""
        return float(bytes if self.measure == "bytes" else params)


@hookimpl(tryfirst=True)  # built-ins first: a third party that reuses a name is the one named
def spikenas_register_scores(registry) -> None:
    registry.add("size", SizeScore)
