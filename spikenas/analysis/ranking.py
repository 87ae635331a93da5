"""Does a training-free score rank networks better than their size does, beyond noise?

Over the ``random`` networks of an analysis (each once, its accuracy the mean over its seeds),
:func:`correlation_table` ranks trained accuracy by every registered score and by every size
baseline (:mod:`spikenas.analysis.sizes`), each row with Kendall's tau-b, its two-sided
p-value, Spearman's rho and a 95% bootstrap interval for tau (networks resampled with
replacement, the same resamples for every row, so differences are paired). Two more things
make a tau readable:

- **the noise ceiling** (role ``ceiling``): tau between the accuracies of two training seeds of
  the same networks (the mean over seed pairs when there are more), which is how well one
  training of the proxy ranks another: no score can be expected to beat it. It needs
  ``proxy.seeds`` of two or more;
- **combined predictors** (role ``combined``, ``<score>+bytes``): the mean of a score's rank and
  the network's bytes' rank, which asks whether the score adds anything to size;
- **the verdict** of each score and combination against the best baseline (the baseline with the highest tau on
  that accuracy): the bootstrap interval of the paired difference of taus. ``beats`` when the
  whole interval is above 0, ``loses`` when it is below, ``tie`` otherwise.

Non-finite scores rank last, as the search ranks them.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass
from typing import Optional

import torch
from torchmetrics.functional.regression import kendall_rank_corrcoef, spearman_corrcoef

from spikenas.analysis.networks import TrainedNetwork, per_network
from spikenas.analysis.sizes import SIZES

RESAMPLES = 1000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class CorrelationRow:
    """How one predictor (a score, a size baseline, or the other seed for ``ceiling``) ranks
    one accuracy (``val`` or ``test``) over ``networks`` random networks."""

    score: str
    role: str  # "score", "baseline", "combined" or "ceiling"
    accuracy: str
    networks: int
    kendall_tau: float
    kendall_p: float
    spearman_rho: float
    tau_low: float = math.nan  # 95% bootstrap interval of tau
    tau_high: float = math.nan
    versus: Optional[str] = None  # scores: the best baseline they are compared with
    margin_low: float = math.nan  # 95% interval of tau minus the best baseline's tau
    margin_high: float = math.nan

    @property
    def verdict(self) -> str:
        """``beats``, ``loses`` or ``tie`` against the best baseline (scores and combinations; else '')."""
        if self.versus is None or math.isnan(self.margin_low):
            return ""
        return "beats" if self.margin_low > 0 else "loses" if self.margin_high < 0 else "tie"


def _finite_ranks(values: list[float]) -> torch.Tensor:
    """``values`` with non-finite ones ranked last."""
    finite = [v for v in values if math.isfinite(v)]
    floor = (min(finite) - 1.0) if finite else 0.0
    return torch.tensor([v if math.isfinite(v) else floor for v in values], dtype=torch.float64)


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """Average ranks (ties share the mean of their positions), 0-based."""
    order = values.argsort()
    ranks = torch.empty_like(values)
    ranks[order] = torch.arange(len(values), dtype=values.dtype)
    for value in values.unique():
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def tau_b(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Kendall's tau-b of each row pair of ``x, y [R, n]`` (``[R]``; NaN where a row is constant)."""
    dx = torch.sign(x[:, :, None] - x[:, None, :])
    dy = torch.sign(y[:, :, None] - y[:, None, :])
    return (dx * dy).sum((1, 2)) / torch.sqrt(dx.abs().sum((1, 2)) * dy.abs().sum((1, 2)))


def _interval(values: torch.Tensor) -> tuple[float, float]:
    finite = values[torch.isfinite(values)]
    if len(finite) < 0.9 * len(values):  # too many degenerate resamples to say
        return math.nan, math.nan
    low, high = torch.quantile(finite, torch.tensor([0.025, 0.975], dtype=finite.dtype)).tolist()
    return low, high


def _ceiling(networks: list[list[TrainedNetwork]], kind: str, resamples: torch.Tensor) -> tuple[float, torch.Tensor, int]:
    """Mean tau over seed pairs between the seeds' accuracies of the networks trained with
    every one of those seeds: the point value, its bootstrap values and the networks used."""
    seeds = sorted({r.seed for g in networks for r in g})
    pairs = []
    for a, b in itertools.combinations(seeds, 2):
        both = [g for g in networks if {a, b} <= {r.seed for r in g}]
        if len(both) >= 3:
            acc = lambda s: torch.tensor([next(getattr(r, f"{kind}_acc") for r in g if r.seed == s) for g in both],  # noqa: E731
                                         dtype=torch.float64)
            pairs.append((acc(a), acc(b)))
    if not pairs:
        return math.nan, torch.full((len(resamples),), math.nan, dtype=torch.float64), 0
    n = min(len(x) for x, _ in pairs)
    point = statistics.fmean(float(tau_b(x[None], y[None])[0]) for x, y in pairs)
    index = resamples % n  # the same resampling scheme on the networks trained with both seeds
    boot = torch.stack([tau_b(x[:n][index], y[:n][index]) for x, y in pairs]).mean(0)
    return point, boot, n


def correlation_table(rows: list[TrainedNetwork], score_names: list[str], resamples: int = RESAMPLES,
                      seed: int = BOOTSTRAP_SEED) -> list[CorrelationRow]:
    """One row per score, size baseline and accuracy, and the noise ceiling (see the module docstring)."""
    networks = [g for g in per_network([r for r in rows if r.has("random")])]
    n = len(networks)
    generator = torch.Generator().manual_seed(seed)
    index = torch.randint(0, max(n, 1), (resamples, max(n, 1)), generator=generator)
    predictors = [(name, "score", [g[0].scores.get(name, math.nan) for g in networks]) for name in score_names]
    predictors += [(name, "baseline", [g[0].sizes.get(name, math.nan) for g in networks]) for name in SIZES]
    if networks:
        size_ranks = _ranks(_finite_ranks([g[0].sizes.get("bytes", math.nan) for g in networks]))
        predictors += [(f"{name}+bytes", "combined", ((_ranks(_finite_ranks(values)) + size_ranks) / 2).tolist())
                       for name, role, values in predictors if role == "score"]
    table = []
    for kind in ("val", "test"):
        acc = torch.tensor([statistics.fmean(getattr(r, f"{kind}_acc") for r in g) for g in networks], dtype=torch.float64)
        measured, boots = [], {}
        for name, role, values in predictors:
            x = _finite_ranks(values)
            if n < 3 or len(set(acc.tolist())) < 2 or len(set(x.tolist())) < 2:  # no ranking
                measured.append(CorrelationRow(name, role, kind, n, math.nan, math.nan, math.nan))
                continue
            tau, p = kendall_rank_corrcoef(x, acc, variant="b", t_test=True)
            boots[name] = tau_b(x[index], acc[index])
            low, high = _interval(boots[name])
            measured.append(CorrelationRow(name, role, kind, n, float(tau), float(p), float(spearman_corrcoef(x, acc)), low, high))
        baselines = [r for r in measured if r.role == "baseline" and not math.isnan(r.kendall_tau)]
        best = max(baselines, key=lambda r: r.kendall_tau, default=None)
        for row in measured:
            if row.role in ("score", "combined") and best is not None and row.score in boots:
                low, high = _interval(boots[row.score] - boots[best.score])
                row = CorrelationRow(**{**row.__dict__, "versus": best.score, "margin_low": low, "margin_high": high})
            table.append(row)
        point, boot, used = _ceiling(networks, kind, index)
        if used:
            low, high = _interval(boot)
            table.append(CorrelationRow("seeds", "ceiling", kind, used, point, math.nan, math.nan, low, high))
    return table


def best_baseline(table: list[CorrelationRow], accuracy: str = "test") -> Optional[CorrelationRow]:
    """The size baseline with the highest tau on ``accuracy``."""
    rows = [r for r in table if r.role == "baseline" and r.accuracy == accuracy and not math.isnan(r.kendall_tau)]
    return max(rows, key=lambda r: r.kendall_tau, default=None)


def ceiling(table: list[CorrelationRow], accuracy: str = "test") -> Optional[CorrelationRow]:
    return next((r for r in table if r.role == "ceiling" and r.accuracy == accuracy), None)
