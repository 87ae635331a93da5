"""``size``: the network's size as the search's score, the baseline every training-free score
must beat (``spikenas analyze`` ranks accuracy by the same measures beside the scores).

A candidate scores its ``bytes`` under the search's cost model (``measure: bytes``, the
default; nothing is built or run), its parameter count (``measure: params``; nothing run), or
its SynOps per inference at initialisation on the scoring batches (``measure: synops``: spikes
x fan-out, batch norm on batch statistics, as ``spikenas analyze``'s ``size_synops``; the
network is run once; the consecutive search counts them incrementally instead, reusing what a
candidate does not change: :class:`~spikenas.search.whole.SynOpsCellEvaluator`). The search
then keeps the largest (or busiest) network that meets the budget. It is offered because on
the networks measured so far these measures ranked trained accuracy at least as well as SAHD
(``docs/analysis.md``). A score with ``measures_size`` is computed by :meth:`SizeScore.of`
from the genotype, without a spike kernel (the search scores whole networks with it:
:mod:`spikenas.search.whole`); the analysis leaves it out of its scores (its size baselines
are the same measures).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from spikenas.errors import SpikenasError
from spikenas.plugin import hookimpl
from spikenas.score import scoring_mode
from spikenas.synops import measure_synops

if TYPE_CHECKING:
    from spikenas.search.context import SearchContext
    from spikenas.space.genotype import Genotype

MEASURES = ("bytes", "params", "synops")


class SizeScore:
    """Size as a score (see the module docstring)."""

    measures_size = True

    def __init__(self, measure: str = "bytes") -> None:
        if measure not in MEASURES:
            raise SpikenasError(f"score 'size': measure must be one of {', '.join(MEASURES)}, got {measure!r}")
        self.name = "size"
        self.measure = measure

    @property
    def counts_synops(self) -> bool:
        """Whether the score is the network's SynOps (``measure: synops``)."""
        return self.measure == "synops"

    def of(self, ctx: "SearchContext", genotype: "Genotype") -> float:
        """The size of ``genotype`` in the search ``ctx``."""
        if self.measure == "bytes":
            return float(ctx.bytes_of(genotype))
        if self.measure == "synops":  # the only one that runs the network: its spikes at initialisation
            return float(sum(measure_synops(scoring_mode(ctx.build(genotype)), ctx.batches).values()))
        return float(ctx.memory.profiler.profile(genotype).params)


def measures_size(score: object) -> bool:
    return bool(getattr(score, "measures_size", False))


class ZeroKernel:
    """A kernel score that records nothing: every kernel is zero (``spikes [T, B, N]`` ->
    ``[B, B]``; batched: ``[T, K, B, N]`` -> ``[K, B, B]``), every score 0. What a
    :class:`~spikenas.search.incremental.CellEvaluator` records when it only counts SynOps."""

    name = "zero_kernel"
    batched = True

    def kernel(self, spikes: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros((), dtype=torch.float64, device=spikes.device)
        return zero.expand(*spikes.shape[1:-1], spikes.shape[-2])

    def reduce(self, kernel: torch.Tensor) -> float:
        return 0.0


@hookimpl(tryfirst=True)  # built-ins first: a third party that reuses a name is the one named
def spikenas_register_scores(registry) -> None:
    registry.add("size", SizeScore)

