"""The statistics behind the analysis's verdicts: Kendall's tau-b, bootstrap intervals and
p-values, the Holm–Bonferroni correction and the noise ceiling of a mean over seeds.

Pure functions of float64 tensors and floats; :mod:`spikenas.analysis.ranking` applies them.

**The noise ceiling.** Scores are ranked against each network's accuracy averaged over ``k``
training seeds. What no score can be expected to beat is Kendall's tau between that mean and
the noise-free accuracy (the mean over infinitely many seeds, on the same evaluation images).
Two seeds measure how well one training ranks another (``agreement``: tau between seeds);
:func:`mean_ceiling` turns it into the ceiling of the ``k``-seed mean: tau to Pearson's r by
Greiner's relation ``r = sin(pi * tau / 2)`` (exact for a bivariate normal, so for any
monotone transform of one: tau is rank-invariant), the Spearman–Brown reliability of a mean of
``k`` seeds ``R = k r / (1 + (k - 1) r)``, its correlation with the noise-free accuracy
``sqrt(R)``, and back to tau. It assumes seed noise independent between seeds, of one
variance for every network. Seeds that do not agree at all (``r <= 0``) give a ceiling of 0.
"""

from __future__ import annotations

import math

import torch

ALPHA = 0.05  # the family-wise error rate of the verdicts and the level of the intervals


def tau_b(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Kendall's tau-b of each row pair of ``x, y [R, n]`` (``[R]``; NaN where a row is constant)."""
    dx = torch.sign(x[:, :, None] - x[:, None, :])
    dy = torch.sign(y[:, :, None] - y[:, None, :])
    return (dx * dy).sum((1, 2)) / torch.sqrt(dx.abs().sum((1, 2)) * dy.abs().sum((1, 2)))


def _finite(values: torch.Tensor) -> torch.Tensor | None:
    """The finite bootstrap values, or None when more than a tenth are degenerate (too many to say)."""
    finite = values[torch.isfinite(values)]
    return finite if len(finite) >= 0.9 * len(values) and len(finite) else None


def interval(values: torch.Tensor) -> tuple[float, float]:
    """The ``1 - ALPHA`` percentile interval of bootstrap ``values`` (NaNs when undefined)."""
    finite = _finite(values)
    if finite is None:
        return math.nan, math.nan
    low, high = torch.quantile(finite, torch.tensor([ALPHA / 2, 1 - ALPHA / 2], dtype=finite.dtype)).tolist()
    return low, high


def bootstrap_p(differences: torch.Tensor) -> float:
    """Two-sided p-value of "the difference is 0" from its bootstrap values: twice the smaller
    share of resamples on either side of 0, each counted with the observed one, ``(c + 1) /
    (R + 1)``, so never 0 (the test that inverts the percentile interval)."""
    finite = _finite(differences)
    if finite is None:
        return math.nan
    count = len(finite) + 1
    below = (int((finite <= 0).sum()) + 1) / count
    above = (int((finite >= 0).sum()) + 1) / count
    return min(1.0, 2 * min(below, above))


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values of one family, in the given order: the ``i``-th
    smallest ``p`` times ``m - i + 1`` (``m`` the finite ones), made non-decreasing, at most 1.
    Rejecting where the adjusted value is below ``ALPHA`` keeps the chance of any false verdict
    in the family at most ``ALPHA``. NaNs stay NaN and do not count in ``m``."""
    order = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def mean_ceiling(agreement: torch.Tensor, seeds: int) -> torch.Tensor:
    """Expected tau between the mean over ``seeds`` seeds and the noise-free accuracy, from the
    tau ``agreement`` between two seeds (elementwise; see the module docstring). Monotone in
    ``agreement``, so it maps a bootstrap interval's ends to the ceiling's."""
    r = torch.sin(math.pi * agreement / 2).clamp(min=0.0)
    reliability = seeds * r / (1 + (seeds - 1) * r)
    return 2 / math.pi * torch.asin(reliability.sqrt())


def mean_agreement(taus: torch.Tensor) -> torch.Tensor:
    """The mean over seed pairs (dimension 0) of the tau between two seeds, averaged as
    correlations (``sin(pi tau / 2)``) and turned back into a tau."""
    return 2 / math.pi * torch.asin(torch.sin(math.pi * taus / 2).mean(0))
