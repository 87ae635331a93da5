"""The analysis tables, computed from the rows of ``networks.csv`` alone, and the enhanced-space rule.

Accuracies are fractions. A network trained with several seeds counts once per seed in the
impact and cell tables (mean and spread over draws and seeds) and once, with its mean over
seeds, in the correlation and baseline tables (one point per architecture).

The enhanced-space rule (documented in ``docs/analysis.md``), on *validation* accuracy (test
accuracy is only reported):

- an operation's impact is the full space's mean accuracy minus that of the space without it;
  the operation is kept when its impact exceeds ``keep_threshold`` (removing it costs
  accuracy). Non-connecting operations (``zero``) are always kept: they cost nothing and are
  how a memory-aware search thins a cell to fit a budget. An operation whose removal leaves no
  connecting operation is kept. If no connecting operation would be kept, the one with the
  largest impact is;
- the cell count is the fewest cells whose found network's mean accuracy is within
  ``cells_tolerance`` of the best cell count's (fewer cells leave more of the budget).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Optional


from spikenas.analysis.networks import TrainedNetwork, per_network


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation (0 for one value) of ``n`` values; NaN when empty."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> "Spread":
        if not values:
            return cls(math.nan, math.nan, 0)
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))


def _rows(rows: list[TrainedNetwork], role: str) -> list[TrainedNetwork]:
    return [r for r in rows if r.has(role)]


# -- operation impact ------------------------------------------------------------------------
@dataclass(frozen=True)
class ImpactRow:
    """One operation: accuracies of the space without it and of cells only using it."""

    operation: str
    connects: bool
    without_val: Spread
    without_test: Spread
    only_val: Spread
    only_test: Spread
    full_val: Spread
    full_test: Spread
    kept: bool

    @property
    def impact_val(self) -> float:
        return self.full_val.mean - self.without_val.mean

    @property
    def impact_test(self) -> float:
        return self.full_test.mean - self.without_test.mean


def impact_table(rows: list[TrainedNetwork], operations: list[str], connecting: set[str], keep_threshold: float) -> list[ImpactRow]:
    """One :class:`ImpactRow` per operation (the ``random`` rows are the full space)."""
    full = _rows(rows, "random")
    full_val = Spread.of([r.val_acc for r in full])
    full_test = Spread.of([r.test_acc for r in full])
    table = []
    for op in operations:
        without = _rows(rows, f"without:{op}")
        only = _rows(rows, f"only:{op}")
        without_val = Spread.of([r.val_acc for r in without])
        impact = full_val.mean - without_val.mean
        if op not in connecting or not without or math.isnan(impact):
            kept = True  # zero; the last connecting operation; nothing measured
        else:
            kept = impact > keep_threshold
        table.append(ImpactRow(
            op, op in connecting, without_val, Spread.of([r.test_acc for r in without]),
            Spread.of([r.val_acc for r in only]), Spread.of([r.test_acc for r in only]), full_val, full_test, kept,
        ))
    if table and not any(r.kept and r.connects for r in table):
        best = max((r for r in table if r.connects), key=lambda r: r.impact_val)
        table = [ImpactRow(**{**r.__dict__, "kept": True}) if r is best else r for r in table]
    return table


# -- cell count ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellsRow:
    """One cell count: its found network, the search's time, and the trained accuracies."""

    cells: int
    hash: str
    genotype: str
    bytes: int
    search_seconds: float
    search_candidates: int
    score: float
    val: Spread
    test: Spread
    chosen: bool


def cells_table(rows: list[TrainedNetwork], searches: dict, tolerance: float) -> list[CellsRow]:
    """One :class:`CellsRow` per searched cell count; ``chosen`` marks the enhanced space's."""
    stats = {}
    for cells, search in sorted(searches.items()):
        found = _rows(rows, f"cells:{cells}")
        if found:
            stats[cells] = (search, Spread.of([r.val_acc for r in found]), Spread.of([r.test_acc for r in found]))
    if not stats:
        return []
    best = max(val.mean for _, val, _ in stats.values())
    chosen = min(c for c, (_, val, _) in stats.items() if val.mean >= best - tolerance)
    return [
        CellsRow(c, s.genotype.hash, str(s.genotype), s.bytes, s.seconds, s.candidates, s.score, val, test, c == chosen)
        for c, (s, val, test) in stats.items()
    ]


# -- found against random --------------------------------------------------------------------
@dataclass(frozen=True)
class BaselineRow:
    """The found network against the random networks of the same budget, on one accuracy, and
    against the size-matched ones: the random and ``stratum`` networks filling the stratum's
    share of the budget (NaN and n=0 without a budget)."""

    accuracy: str
    found_hash: str
    found_bytes: int
    found_acc: float
    random: Spread
    random_best: float
    percentile: float  # share of random networks the found one beats (ties count half), in %
    found_fill: float = math.nan  # the found network's bytes / the budget
    matched: Spread = Spread(math.nan, math.nan, 0)
    matched_best: float = math.nan
    matched_percentile: float = math.nan  # the same share among the size-matched networks

    @property
    def gap_mean(self) -> float:
        return self.found_acc - self.random.mean

    @property
    def gap_best(self) -> float:
        return self.found_acc - self.random_best


def _percentile(mine: float, others: list[float]) -> float:
    """Share of ``others`` below ``mine``, ties counting half, in % (NaN when empty)."""
    if not others:
        return math.nan
    return 100.0 * sum(1.0 if a < mine else 0.5 if a == mine else 0.0 for a in others) / len(others)


def baseline_table(rows: list[TrainedNetwork], budget: int | None = None, stratum_least: int | None = None) -> list[BaselineRow]:
    """One :class:`BaselineRow` per accuracy (``stratum_least``: the bytes of the stratum)."""
    found = per_network(_rows(rows, "found"))
    randoms = per_network([r for r in _rows(rows, "random") if not r.has("found")])
    matched = [] if stratum_least is None else per_network(
        [r for r in rows if (r.has("random") or r.has("stratum")) and not r.has("found") and r.bytes >= stratum_least])
    if not found or not randoms:
        return []
    table = []
    for kind in ("val", "test"):
        def mean_acc(group: list[TrainedNetwork]) -> float:
            return statistics.fmean(getattr(r, f"{kind}_acc") for r in group)

        mine = mean_acc(found[0])
        others = [mean_acc(g) for g in randoms]
        peers = [mean_acc(g) for g in matched]
        table.append(BaselineRow(kind, found[0][0].hash, found[0][0].bytes, mine, Spread.of(others), max(others),
                                 _percentile(mine, others), found[0][0].bytes / budget if budget else math.nan,
                                 Spread.of(peers), max(peers, default=math.nan), _percentile(mine, peers)))
    return table


# -- the enhanced space ----------------------------------------------------------------------
def enhanced_space(impact: list[ImpactRow], cells: list[CellsRow], operations: list[str], default_cells: int) -> dict:
    """``{"operations": [...], "cells": n}`` by the rule above (the configured values where a
    study did not run)."""
    kept: Optional[list[str]] = [r.operation for r in impact if r.kept] if impact else None
    chosen = [r.cells for r in cells if r.chosen]
    return {"operations": kept or list(operations), "cells": chosen[0] if chosen else default_cells}
