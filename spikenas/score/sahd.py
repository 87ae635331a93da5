"""SAHD, SNASNet's sparsity-aware Hamming-distance score (Kim et al., ECCV 2022).

For every LIF layer and timestep, with ``x_i`` the binary spike vector of sample ``i``
(length ``N``) and ``r_i`` its firing rate::

    d(i, j) = alpha * Hamming(x_i, x_j) / (N * (r_i (1 - r_j) + (1 - r_i) r_j))
    K(i, j) += N - d(i, j)

and the score is ``log|det K|`` of the kernel averaged over layers and timesteps. Samples with
identical constant rates (both silent, or both saturated) have distance 0. All Hamming
distances of a batch come from one matrix product; no loop over sample pairs.
``neuron_normalised=False`` drops the ``N`` in the denominator (an ablation; the paper's formula keeps it).

``sahd_layer`` (``per_layer=True``) divides each layer's contribution by its ``N``, so every LIF
layer weighs the same in the kernel; in SAHD a layer weighs in proportion to its neurons, and
the widest layers (the first cell's) dominate.
"""

from __future__ import annotations

import functools

import torch

from spikenas.plugin import hookimpl
from spikenas.score import LogDetKernelScore, hamming_distances, sum_steps


class SAHD(LogDetKernelScore):
    """Sparsity-aware Hamming-distance kernel score."""

    batched = True  # kernel() also takes [T, K, B, N] (see KernelScore.kernel)

    def __init__(self, alpha: float = 0.5, neuron_normalised: bool = True, per_layer: bool = False) -> None:
        self.name = "sahd_layer" if per_layer else "sahd"
        self.alpha = float(alpha)
        self.neuron_normalised = neuron_normalised
        self.per_layer = per_layer

    def kernel(self, spikes: torch.Tensor) -> torch.Tensor:
        n = spikes.shape[-1]
        hamming, ones = hamming_distances(spikes)
        rate = (ones / n).double()
        expected = rate.unsqueeze(-1) * (1 - rate.unsqueeze(-2)) + (1 - rate.unsqueeze(-1)) * rate.unsqueeze(-2)
        if self.neuron_normalised:
            expected = expected * n
        scaled = self.alpha * hamming.double() / torch.where(expected > 0, expected, 1.0)
        return sum_steps((n - scaled) / n if self.per_layer else n - scaled)


@hookimpl(tryfirst=True)  # built-ins first: a third party that reuses a name is the one named
def spikenas_register_scores(registry) -> None:
    registry.add("sahd", SAHD)
    registry.add("sahd_layer", functools.partial(SAHD, per_layer=True))
