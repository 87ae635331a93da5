"""Plain spike Hamming distance, SNASNet's ablation baseline for SAHD (Kim et al., ECCV 2022).

For every LIF layer and timestep, with ``x_i`` the binary spike vector of sample ``i`` (length
``N``)::

    K(i, j) += N - Hamming(x_i, x_j)

and the score is ``log|det K|`` of the kernel averaged over layers and timesteps: the NASWOT
kernel (Mellor et al., 2021) on spikes. Unlike SAHD it does not rescale distances by the
firing rates, so sparse layers (few spikes, small distances) weigh as much as dense ones.
SNASNet reports Kendall tau 0.519 for it against 0.646 for SAHD (CIFAR-100);
``spikenas analyze`` measures both on your data.
"""

from __future__ import annotations

import torch

from spikenas.plugin import hookimpl
from spikenas.score import LogDetKernelScore, hamming_distances


class Hamming(LogDetKernelScore):
    """Hamming-distance kernel score (no sparsity correction)."""

    batched = True  # kernel() also takes [T, K, B, N] (see KernelScore.kernel)

    def __init__(self) -> None:
        self.name = "hamming"

    def kernel(self, spikes: torch.Tensor) -> torch.Tensor:
        """``spikes [T, (K,) B, N]`` -> ``[(K,) B, B]`` float64: the sum over T of ``N - Hamming``."""
        hamming, _ = hamming_distances(spikes)
        return (spikes.shape[-1] - hamming.double()).sum(0)


@hookimpl(tryfirst=True)  # built-ins first: a third party that reuses a name is the one named
def spikenas_register_scores(registry) -> None:
    registry.add("hamming", Hamming)
