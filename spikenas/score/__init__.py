"""Training-free scores that rank untrained networks from the spikes of one batch.

A :class:`KernelScore` is additive over LIF layers and timesteps: each LIF output
``[T, B, ...]`` adds a ``[B, B]`` kernel contribution (and ``T`` to the count); the score is
``reduce(kernel_sum / count)``. Additivity is what lets the consecutive search reuse the
contributions of the cells it does not change. :func:`score_network` scores a whole network.

A :class:`NetworkScore` instead measures a whole network at once (gradients, one chosen
layer): the search then scores every candidate as a whole network, the cells after it at their
cheapest. :func:`measure_network` scores a network with either kind.

Every score says how it is evaluated through one method, ``evaluation()`` (an
:class:`Evaluation`); the scoring engine (:mod:`spikenas.evaluate`) is the one place that acts
on the answer. A score without the method is a kernel score (the plugin contract of 0.1).
"""

from spikenas.score.kernel import (
    KernelAccumulator, candidate_kernels, finite_mean, hamming_distances, measure_network, neurons_flat, score_network,
    scoring_mode, sum_steps,
)
from spikenas.score.protocol import Evaluation, KernelScore, LogDetKernelScore, NetworkScore, evaluation_of

__all__ = [
    "Evaluation", "KernelAccumulator", "KernelScore", "LogDetKernelScore", "NetworkScore", "candidate_kernels",
    "evaluation_of", "finite_mean", "hamming_distances", "measure_network", "neurons_flat", "score_network",
    "scoring_mode", "sum_steps",
]
