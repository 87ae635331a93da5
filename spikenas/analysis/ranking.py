"""Does a training-free score rank networks better than their size does, beyond noise?

:func:`correlation_table` ranks trained accuracy (each network once, its accuracy the mean
over its seeds) by every predictor, over two populations of networks:

- ``random``: the ``random`` networks of the analysis (uniform draws within the budget, of
  every size the budget allows: here tau mostly measures size);
- ``stratum``: the ``random`` and ``stratum`` networks filling at least ``stratum_fill`` of the
  budget, the choice a budget-filling search actually makes.

The predictors, by ``role``:

- ``score``: every registered training-free score at initialisation;
- ``baseline``: the pure counts of :mod:`spikenas.analysis.sizes` (parameters, bytes, MACs,
  neurons). :data:`REFERENCE` (MACs) is the one every verdict is against, fixed in advance:
  choosing the best baseline on the data it is reported on would flatter it;
- ``activity``: SynOps at initialisation, an activity proxy (spikes times fan-out on the
  scoring batches) that depends on the data and the initialisation, like a score;
- ``combined``: ``<score>+bytes``, the mean of a score's rank and the bytes' rank (does the
  score add anything to size?);
- ``agreement`` (``seed_vs_seed``): tau between the accuracies of two training seeds of the
  same networks (the mean over seed pairs), with two or more ``proxy.seeds``;
- ``ceiling`` (``mean_of_<k>_seeds``): the expected tau between the ``k``-seed mean accuracy
  the predictors are ranked against and the noise-free accuracy
  (:func:`~spikenas.analysis.inference.mean_ceiling`): what a perfect predictor would reach.

Each row has Kendall's tau-b, its two-sided p-value, Spearman's rho and a 95% bootstrap interval
of tau (networks resampled with replacement, the same resamples for every row of a population,
so differences are paired). Every score, combination and the activity proxy is compared with
the reference: the bootstrap interval of the paired difference of taus and its bootstrap
p-value, Holm–Bonferroni adjusted over the family of those comparisons (one family per
population and accuracy). The verdict is ``beats`` or ``loses`` where the adjusted p-value is
below 0.05 (by the sign of the difference), ``tie`` otherwise.

Non-finite scores rank last, as the search ranks them.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from dataclasses import dataclass
from typing import Optional

import torch
from torchmetrics.functional.regression import kendall_rank_corrcoef, spearman_corrcoef

from spikenas.analysis.inference import ALPHA, bootstrap_p, holm, interval, mean_agreement, mean_ceiling, tau_b
from spikenas.analysis.networks import TrainedNetwork, per_network
from spikenas.analysis.sizes import SIZES

RESAMPLES = 1000
BOOTSTRAP_SEED = 0
REFERENCE = "macs"  # the baseline every verdict is against, chosen before any data
ACTIVITY = ("synops",)  # size measures that depend on data and initialisation: not baselines
POPULATIONS = ("random", "stratum")


@dataclass(frozen=True)
class CorrelationRow:
    """How one predictor ranks one accuracy (``val`` or ``test``) over ``networks`` networks of
    one ``population`` (see the module docstring for the roles)."""

    score: str
    role: str  # "score", "baseline", "activity", "combined", "agreement" or "ceiling"
    accuracy: str
    networks: int
    kendall_tau: float
    kendall_p: float
    spearman_rho: float
    tau_low: float = math.nan  # 95% bootstrap interval of tau
    tau_high: float = math.nan
    population: str = "random"
    versus: Optional[str] = None  # compared rows: the reference baseline
    margin: float = math.nan  # tau minus the reference's tau
    margin_low: float = math.nan  # its 95% bootstrap interval (one comparison)
    margin_high: float = math.nan
    margin_p: float = math.nan  # its two-sided bootstrap p-value
    margin_p_holm: float = math.nan  # Holm–Bonferroni adjusted over the family

    @property
    def verdict(self) -> str:
        """``beats``, ``loses`` or ``tie`` against the reference (compared rows; else '')."""
        if self.versus is None or math.isnan(self.margin_p_holm):
            return ""
        if self.margin_p_holm >= ALPHA:
            return "tie"
        return "beats" if self.margin > 0 else "loses"


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


def _seed_rows(networks: list[list[TrainedNetwork]], kind: str, index: torch.Tensor, population: str) -> list[CorrelationRow]:
    """The ``agreement`` and ``ceiling`` rows over the networks trained with every seed of a
    pair (none with one seed)."""
    seeds = sorted({r.seed for g in networks for r in g})
    pairs = []
    for a, b in itertools.combinations(seeds, 2):
        both = [g for g in networks if {a, b} <= {r.seed for r in g}]
        if len(both) >= 3:
            acc = lambda s: torch.tensor([next(getattr(r, f"{kind}_acc") for r in g if r.seed == s) for g in both],  # noqa: E731
                                         dtype=torch.float64)
            pairs.append((acc(a), acc(b)))
    if not pairs:
        return []
    n = min(len(x) for x, _ in pairs)
    point = mean_agreement(torch.stack([tau_b(x[None], y[None])[0] for x, y in pairs]))
    resampled = index % n  # the same resampling scheme on the networks trained with both seeds
    boot = mean_agreement(torch.stack([tau_b(x[:n][resampled], y[:n][resampled]) for x, y in pairs]))
    k = min(len(g) for g in networks)  # the seeds each accuracy is a mean of
    low, high = interval(boot)
    ceiling = mean_ceiling(torch.tensor([float(point), low, high], dtype=torch.float64), k).tolist()
    return [CorrelationRow("seed_vs_seed", "agreement", kind, n, float(point), math.nan, math.nan, low, high, population),
            CorrelationRow(f"mean_of_{k}_seeds", "ceiling", kind, n, ceiling[0], math.nan, math.nan, ceiling[1], ceiling[2],
                           population)]


def _population_rows(networks: list[list[TrainedNetwork]], score_names: list[str], population: str,
                     index: torch.Tensor) -> list[CorrelationRow]:
    n = len(networks)
    predictors = [(name, "score", [g[0].scores.get(name, math.nan) for g in networks]) for name in score_names]
    predictors += [(name, "activity" if name in ACTIVITY else "baseline", [g[0].sizes.get(name, math.nan) for g in networks])
                   for name in SIZES]
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
                measured.append(CorrelationRow(name, role, kind, n, math.nan, math.nan, math.nan, population=population))
                continue
            tau, p = kendall_rank_corrcoef(x, acc, variant="b", t_test=True)
            boots[name] = tau_b(x[index], acc[index])
            low, high = interval(boots[name])
            measured.append(CorrelationRow(name, role, kind, n, float(tau), float(p), float(spearman_corrcoef(x, acc)),
                                           low, high, population))
        reference = next((r for r in measured if r.score == REFERENCE and r.score in boots), None)
        compared = [i for i, r in enumerate(measured) if r.role in ("score", "combined", "activity") and r.score in boots]
        if reference is not None and compared:
            differences = {i: boots[measured[i].score] - boots[REFERENCE] for i in compared}
            raw = [bootstrap_p(differences[i]) for i in compared]
            for i, p, adjusted in zip(compared, raw, holm(raw)):
                low, high = interval(differences[i])
                measured[i] = dataclasses.replace(measured[i], versus=REFERENCE, margin=measured[i].kendall_tau - reference.kendall_tau,
                                                  margin_low=low, margin_high=high, margin_p=p, margin_p_holm=adjusted)
        table += measured + _seed_rows(networks, kind, index, population)
    return table


def correlation_table(rows: list[TrainedNetwork], score_names: list[str], stratum_least: int | None = None,
                      resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> list[CorrelationRow]:
    """The rows of both populations (the ``stratum`` one only with ``stratum_least``, the bytes
    a network must have to be in it; see the module docstring)."""
    populations = {"random": per_network([r for r in rows if r.has("random")])}
    if stratum_least is not None:
        populations["stratum"] = per_network([r for r in rows if (r.has("random") or r.has("stratum")) and r.bytes >= stratum_least])
    generator = torch.Generator().manual_seed(seed)
    table = []
    for population, networks in populations.items():
        n = max(len(networks), 1)
        index = torch.randint(0, n, (resamples, n), generator=generator)
        table += _population_rows(networks, score_names, population, index)
    return table


def reference_row(table: list[CorrelationRow], accuracy: str = "test", population: str = "random") -> Optional[CorrelationRow]:
    """The reference baseline's row (:data:`REFERENCE`), if it could be ranked."""
    return next((r for r in table if r.score == REFERENCE and r.role == "baseline" and r.accuracy == accuracy
                 and r.population == population and not math.isnan(r.kendall_tau)), None)


def seed_row(table: list[CorrelationRow], role: str, accuracy: str = "test", population: str = "random") -> Optional[CorrelationRow]:
    """The ``agreement`` or ``ceiling`` row (None with one seed)."""
    return next((r for r in table if r.role == role and r.accuracy == accuracy and r.population == population), None)
