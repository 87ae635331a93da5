"""Running scores: kernel sums over LIF layers, whole networks in scoring mode, and the
spike arithmetic the kernels share (Hamming distances, neurons in memory order)."""

from __future__ import annotations

import math

import torch
from torch import nn

from spikenas.neuron import record_spikes
from spikenas.score.protocol import Evaluation, KernelScore, NetworkScore, evaluation_of


def measure_network(network: nn.Module, batches: list[torch.Tensor], score: KernelScore | NetworkScore) -> float:
    """``network``'s score on ``batches`` with a kernel or a whole-network score."""
    if evaluation_of(score) is Evaluation.WHOLE_NETWORK:
        return float(score.measure(scoring_mode(network), batches))
    return score_network(network, batches, score)


class KernelAccumulator:
    """Running sum of kernel contributions: ``add`` per LIF output, ``score`` at the end."""

    def __init__(self, score: KernelScore, kernel: torch.Tensor | None = None, count: int = 0) -> None:
        self.score = score
        self.kernel = kernel
        self.count = count

    def add(self, spikes: torch.Tensor) -> None:
        k = self.score.kernel(neurons_flat(spikes))
        self.kernel = k if self.kernel is None else self.kernel + k
        self.count += spikes.shape[0]

    def copy(self) -> "KernelAccumulator":
        return KernelAccumulator(self.score, self.kernel, self.count)

    def merge(self, kernel: torch.Tensor | None, count: int) -> None:
        """Add contributions recorded elsewhere (another accumulator's ``kernel`` and ``count``)."""
        if kernel is not None:
            self.kernel = kernel if self.kernel is None else self.kernel + kernel
        self.count += count

    def value(self) -> float:
        """The score; ``-inf`` when no LIF layer fired a contribution."""
        if self.kernel is None or self.count == 0:
            return -math.inf
        return float(self.score.reduce(self.kernel / self.count))


def neurons_flat(spikes: torch.Tensor, lead: int = 2) -> torch.Tensor:
    """``spikes [T, B, ...]`` -> ``[T, B, N]`` (``lead`` leading dimensions kept: 3 for
    ``[T, K, B, ...]``) with the neurons in memory order: a view, not a copy, of a
    channels-last layer's output (``flatten(lead)`` would copy it into C, H, W order)."""
    inner = sorted(range(lead, spikes.dim()), key=lambda d: -spikes.stride(d))
    return spikes.permute(*range(lead), *inner).flatten(lead)


def candidate_kernels(score: KernelScore, spikes: torch.Tensor) -> list[torch.Tensor]:
    """The kernel contributions of K candidates' spikes of one layer, ``spikes [T, K, B, ...]``:
    ``[score.kernel(neurons_flat(spikes[:, k])) for k in range(K)]``, from one call for a
    ``batched`` score (every built-in)."""
    if getattr(score, "batched", False):
        return list(score.kernel(neurons_flat(spikes, lead=3)).unbind(0))
    return [score.kernel(neurons_flat(s)) for s in spikes.unbind(1)]


def scoring_mode(network: nn.Module) -> nn.Module:
    """Eval mode (no dropout) with batch norm on batch statistics, as at random init."""
    network.eval()
    for m in network.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train()
    return network


def score_network(network: nn.Module, batches: list[torch.Tensor], score: KernelScore, synops=None) -> float:
    """Mean score over ``batches`` (each ``[B, c, H, W]``) of the spikes ``network(images)``
    fires (any module whose neurons are :class:`~spikenas.neuron.LIF`); neuron state starts at
    rest for each batch. ``synops``: a :class:`~spikenas.cost.synops.SynOpsTally` that counts the
    same spikes' SynOps."""
    scoring_mode(network)
    values = []
    with torch.inference_mode():
        for images in batches:
            acc = KernelAccumulator(score)
            recording = record_spikes(network, acc.add) if synops is None else synops.recording(network, acc.add)
            with recording:
                network(images)
            values.append(acc.value())
    return finite_mean(values)


def hamming_distances(spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairwise Hamming distances of binary spike vectors and their spike counts.

    ``spikes [T, ..., B, N]`` -> ``(distances [T, ..., B, B], counts [T, ..., B])``, both
    float32 and exact (integers below 2**24, whatever the order of summation), from one batched
    matrix product: no loop over sample pairs. A neuron that fired several spikes in a step
    (sinabs's models) counts as one: the code is which neurons fired.
    """
    x = (spikes > 0).float()
    if x.dim() == 3:
        both = torch.bmm(x, x.transpose(1, 2))  # [T, B, B] spikes in common
    else:  # one product over the leading dimensions taken in memory order: a view, not a copy, where they are dense
        lead = sorted(range(x.dim() - 2), key=lambda d: -x.stride(d))
        b = x.shape[-2]
        flat = x.permute(*lead, -2, -1).reshape(-1, *x.shape[-2:])
        both = torch.bmm(flat, flat.transpose(1, 2)).view(*(x.shape[d] for d in lead), b, b)
        both = both.permute(*sorted(range(len(lead)), key=lambda i: lead[i]), -2, -1)
    counts = x.sum(-1)  # [T, ..., B]
    return counts.unsqueeze(-1) + counts.unsqueeze(-2) - 2 * both, counts


def sum_steps(contributions: torch.Tensor) -> torch.Tensor:
    """``contributions [T, ...]`` summed over T in a fixed order (t = 0, 1, ...): the same bits
    for one candidate's ``[T, B, B]`` and a stacked group's ``[T, K, B, B]``, where ``sum(0)``
    may group the terms differently for different shapes."""
    return contributions.cumsum(0)[-1]


def finite_mean(values: list[float]) -> float:
    """Mean of ``values``; ``-inf`` if any is non-finite (ranked last)."""
    if not values or any(not math.isfinite(v) for v in values):
        return -math.inf
    return sum(values) / len(values)
