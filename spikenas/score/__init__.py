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

from __future__ import annotations

import enum
import math
from typing import Protocol

import torch
from torch import nn

from spikenas.neuron import record_spikes



class Evaluation(enum.Enum):
    """How a score is evaluated, as its ``evaluation()`` says.

    - ``SPIKE_KERNEL``: ``kernel``/``reduce`` (:class:`KernelScore`), additive over LIF layers
      and timesteps, so a search reuses what a candidate does not change.
    - ``WHOLE_NETWORK``: ``measure(network, batches)`` (:class:`NetworkScore`), a whole network
      at a time.
    - ``SIZE``: the network's bytes or parameters, from the genotype alone (nothing runs):
      ``of(bytes, params)``.
    - ``SYNOPS``: the network's SynOps per inference at initialisation on the scoring batches,
      additive over LIF layers like a kernel.
    """

    SPIKE_KERNEL = "spike_kernel"
    WHOLE_NETWORK = "whole_network"
    SIZE = "size"
    SYNOPS = "synops"


def evaluation_of(score: object) -> Evaluation:
    """``score.evaluation()``; :attr:`Evaluation.SPIKE_KERNEL` for a score without the method."""
    method = getattr(score, "evaluation", None)
    return method() if callable(method) else Evaluation.SPIKE_KERNEL


class KernelScore(Protocol):
    """A score plugin's contract (``factory(**options)`` returns one)."""

    name: str

    def evaluation(self) -> Evaluation:
        """:attr:`Evaluation.SPIKE_KERNEL`."""
        ...

    def kernel(self, spikes: torch.Tensor) -> torch.Tensor:
        """``spikes [T, B, N]`` (0/1) -> the ``[B, B]`` float64 sum of the T contributions.

        ``N`` holds a layer's neurons in memory order (see :func:`neurons_flat`), so a kernel
        must not depend on their order: it compares samples over the set of neurons. A score
        whose ``batched`` attribute is true also takes ``[T, K, B, N]`` (K candidates' spikes)
        and returns ``[K, B, B]``, each equal to its candidate's own kernel bit for bit
        (:func:`candidate_kernels`)."""
        ...

    def reduce(self, kernel: torch.Tensor) -> float:
        """Averaged kernel ``[B, B]`` -> score (higher is better; may be non-finite)."""
        ...


class NetworkScore(Protocol):
    """A whole-network score plugin's contract."""

    name: str

    def evaluation(self) -> Evaluation:
        """:attr:`Evaluation.WHOLE_NETWORK`."""
        ...

    def measure(self, network: nn.Module, batches: list[torch.Tensor]) -> float:
        """The score (higher is better; may be non-finite: ranked last) of an untrained
        ``network`` (``[B, c, H, W] -> [B, classes]``, in :func:`scoring_mode`) on ``batches``
        (each ``[B, c, H, W]``). It must leave ``network``'s weights as they were."""
        ...


def measure_network(network: nn.Module, batches: list[torch.Tensor], score: "KernelScore | NetworkScore") -> float:
    """``network``'s score on ``batches`` with a kernel or a whole-network score."""
    if evaluation_of(score) is Evaluation.WHOLE_NETWORK:
        return float(score.measure(scoring_mode(network), batches))
    return score_network(network, batches, score)


class LogDetKernelScore:
    """Base of the kernel scores reduced as SNASNet reduces them: ``log|det K|`` of the
    averaged ``[B, B]`` kernel. Subclasses give ``name`` and ``kernel``."""

    def evaluation(self) -> Evaluation:
        return Evaluation.SPIKE_KERNEL

    def reduce(self, kernel: torch.Tensor) -> float:
        return torch.linalg.slogdet(kernel).logabsdet.item()


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

    ``spikes [T, ..., B, N]`` (0/1) -> ``(distances [T, ..., B, B], counts [T, ..., B])``, both
    float32 and exact (integers below 2**24, whatever the order of summation), from one batched
    matrix product: no loop over sample pairs.
    """
    x = spikes.float()
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
