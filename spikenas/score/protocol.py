"""The score protocol: how a score says it is evaluated (:class:`Evaluation`), the kernel and
whole-network contracts, and the ``log|det K|`` base that SAHD and Hamming share."""

from __future__ import annotations

import enum
from typing import Protocol

import torch
from torch import nn


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


class LogDetKernelScore:
    """Base of the kernel scores reduced as SNASNet reduces them: ``log|det K|`` of the
    averaged ``[B, B]`` kernel. Subclasses give ``name`` and ``kernel``."""

    def evaluation(self) -> Evaluation:
        return Evaluation.SPIKE_KERNEL

    def reduce(self, kernel: torch.Tensor) -> float:
        return torch.linalg.slogdet(kernel).logabsdet.item()
