"""The LIF recurrence for training as one autograd node per layer, not six per timestep.

:func:`~spikenas.neuron.functional.lif_sequence` runs norse's step ``T`` times under autograd:
every step records its own graph nodes (decay, threshold, surrogate, reset), and backward
walks them all. :class:`FusedLIF` computes the same forward arithmetic in one loop, keeps only
the pre-reset membranes ``u [T, B, ...]`` and the spikes, and runs backpropagation through
time by hand:

    u_t = v_{t-1} + r (x_t - v_{t-1})       s_t = H(u_t - θ)
    v_t = (1 - s_t) u_t + s_t v_reset        (hard)      v_t = u_t - s_t θ    (soft)
    ∂L/∂u_t = ∂L/∂v_t ∂v_t/∂u_t + (∂L/∂s_t + ∂L/∂v_t ∂v_t/∂s_t) σ'(u_t - θ)
    ∂L/∂x_t = r ∂L/∂u_t      ∂L/∂v_{t-1} = (1 - r) ∂L/∂u_t      ∂L/∂r = Σ_t ∂L/∂u_t (x_t - v_{t-1})

with σ' the surrogate's derivative, the reset differentiated through the spike as norse does.
Spikes are the norse path's bit for bit; gradients equal it up to float rounding
(``tests/test_fused_lif.py``). Surrogates: :data:`FUSED_SURROGATES` (norse's ``super``, which
ignores ``alpha``: ``1 / (|z| + 1)²``; SNASNet's ``atan``); the others keep the norse path.
"""

from __future__ import annotations

import math

import torch

FUSED_SURROGATES = ("super", "atan")


def _surrogate_grad(z: torch.Tensor, surrogate: str, alpha: float) -> torch.Tensor:
    """``σ'(z)`` of ``surrogate`` at ``z = u - θ``, computed in ``z``'s storage."""
    if surrogate == "super":
        return z.abs_().add_(1.0).pow_(2).reciprocal_()
    return z.mul_(math.pi / 2 * alpha).pow_(2).add_(1.0).reciprocal_().mul_(alpha / 2)


def _resets(membranes: torch.Tensor, spikes: torch.Tensor, threshold: float, hard: bool, v_reset: float) -> torch.Tensor:
    """``v_t`` for every ``t`` from the pre-reset membranes and the spikes (as the forward pass)."""
    if hard:
        v = membranes * (1 - spikes)
        return v.add_(spikes, alpha=v_reset) if v_reset else v
    return membranes - spikes * threshold


class FusedLIF(torch.autograd.Function):
    """``x [T, B, ...]`` from rest -> spikes ``[T, B, ...]``; ``rate`` = ``dt / tau``, a float
    or a 0-dim tensor (learnt: its gradient is returned)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, rate: float | torch.Tensor, threshold: float, hard: bool, v_reset: float,
                surrogate: str, alpha: float) -> torch.Tensor:
        membranes = torch.empty_like(x)
        spikes = torch.empty_like(x)
        v = torch.zeros_like(x[0])
        buffer = torch.empty_like(v)
        for t in range(x.shape[0]):  # lif_sequence_no_grad's arithmetic: norse's spikes bit for bit
            u = membranes[t]
            torch.add(v, torch.sub(x[t], v, out=buffer).mul_(rate), out=u)
            torch.gt(u, threshold, out=spikes[t])
            if hard:
                torch.mul(u, torch.le(u, threshold, out=buffer), out=v)
                if v_reset:
                    v.add_(spikes[t], alpha=v_reset)
            else:
                torch.sub(u, spikes[t], alpha=threshold, out=v)
        learnt = isinstance(rate, torch.Tensor) and ctx.needs_input_grad[1]
        ctx.save_for_backward(membranes, spikes, x if learnt else None, rate if isinstance(rate, torch.Tensor) else None)
        ctx.settings = (rate if not isinstance(rate, torch.Tensor) else None, threshold, hard, v_reset, surrogate, alpha, learnt)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        membranes, spikes, x, rate_tensor = ctx.saved_tensors
        rate, threshold, hard, v_reset, surrogate, alpha, learnt = ctx.settings
        rate = rate_tensor if rate is None else rate
        # ∂L/∂u_t = ∂L/∂v_t · a_t + b_t, with a_t = ∂v_t/∂u_t through the reset and the spike
        through_spike = _surrogate_grad(membranes - threshold, surrogate, alpha)
        if hard:
            a = (v_reset - membranes).mul_(through_spike).add_(1 - spikes)
        else:
            a = through_spike.mul(-threshold).add_(1.0)
        b = through_spike.mul_(grad_spikes)
        grad_u = b  # filled step by step, last to first, in place of b
        keep = 1 - rate  # ∂u_t/∂v_{t-1}
        grad_v = None
        for t in range(membranes.shape[0] - 1, -1, -1):
            if grad_v is not None:
                grad_u[t].addcmul_(grad_v, a[t])
            grad_v = grad_u[t] * keep
        grad_rate = None
        if learnt:
            previous = torch.zeros_like(membranes)
            previous[1:] = _resets(membranes[:-1], spikes[:-1], threshold, hard, v_reset)
            grad_rate = (grad_u * (x - previous)).sum()
        grad_x = grad_u.mul_(rate) if ctx.needs_input_grad[0] else None
        return grad_x, grad_rate, None, None, None, None, None


def fused_lif(x: torch.Tensor, rate: float | torch.Tensor, threshold: float, reset: str, v_reset: float,
              surrogate: str, alpha: float) -> torch.Tensor:
    """:class:`FusedLIF` on ``x [T, B, ...]`` (``reset``: ``"hard"`` or ``"soft"``)."""
    return FusedLIF.apply(x, rate, threshold, reset == "hard", v_reset, surrogate, alpha)
