"""sinabs's spiking neurons, as ``sinabs.from_nir`` (sinabs 3.1) builds them, in sinabs's own
arithmetic, so that a network trained with them runs in sinabs (and on SynSense's chips, whose
neurons are sinabs's IAF) with every spike the same.

One step of ``x [B, ...]`` (sinabs ``LIF(norm_input=False)`` / ``IAF``, ``MultiSpike``,
``MembraneSubtract``)::

    v <- decay v + x              # sinabs_lif: decay = exp(-1 / tau_mem), tau_mem = sinabs_tau(1 / tau)
                                  # in float32, so decay = 1 - 1/tau up to rounding; sinabs_iaf: v + x
    s  = (v > 0) trunc(v / θ)     # as many spikes as whole thresholds fit (0, 1, 2, ...)
    v <- v - s θ                  # reset by subtraction
    v <- relu(v - v_min) + v_min  # sinabs_iaf only: v_min = -θ (from_nir's min_v_mem for a NIR IF)

The backward pass is sinabs's: ``ds/dv`` is the surrogate's derivative at ``v - θ`` whatever the
number of spikes, and the gradient flows through the reset (``s θ``) and the clamp as autograd
takes them. Surrogates (:data:`MULTISPIKE_SURROGATES`): ``exp`` is sinabs's default
``SingleExponential(grad_width=1 / alpha)``, ``alpha / θ exp(-alpha |v - θ| / θ)``; ``super`` and
``atan`` are spikenas's (:mod:`spikenas.neuron.fused`). ``tests/test_neuron_sinabs.py`` checks
spikes, membranes and gradients against sinabs's own layers on random inputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from spikenas.neuron.fused import _surrogate_grad

MULTISPIKE_SURROGATES = ("exp", "super", "atan")


def sinabs_tau(rate: float) -> float:
    """sinabs's ``tau_mem`` in steps for a decay of ``1 - rate`` per step, ``-1 / ln(1 - rate)``
    (1e-30, no memory, for ``rate`` 1): the value a ``sinabs_lif`` layer trains with and its NIR
    ``LIF`` holds, so that sinabs's ``exp(-1 / tau_mem)`` is the decay it trained with."""
    return 1e-30 if rate >= 1.0 else -1.0 / math.log1p(-rate)


def surrogate_derivative(v: torch.Tensor, threshold: torch.Tensor, surrogate: str, alpha: float) -> torch.Tensor:
    """``ds/dv`` at the membrane ``v`` (a new tensor): ``surrogate`` of :data:`MULTISPIKE_SURROGATES`."""
    if surrogate == "exp":  # sinabs.activation.SingleExponential, written as sinabs computes it
        width = threshold * (1.0 / alpha)
        return 1.0 / width * torch.exp(-torch.abs(v - threshold) / width)
    return _surrogate_grad(v - threshold, surrogate, alpha)


class MultiSpike(torch.autograd.Function):
    """``(v > 0) trunc(v / θ)`` spikes of the membrane ``v`` (``θ`` a tensor that broadcasts to
    ``v``), with the surrogate's derivative at ``v - θ`` as the gradient (sinabs's ``MultiSpike``)."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, threshold: torch.Tensor, surrogate: str, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(v, threshold)
        ctx.surrogate, ctx.alpha = surrogate, alpha
        return (v > 0) * torch.div(v, threshold, rounding_mode="trunc")

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        v, threshold = ctx.saved_tensors
        return grad * surrogate_derivative(v, threshold, ctx.surrogate, ctx.alpha), None, None, None


def multispike_step(x: torch.Tensor, v: torch.Tensor | None, decay: torch.Tensor | None, threshold: float | torch.Tensor,
                    surrogate: str, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One step (see the module docstring): ``x [B, ...]``, ``v`` the membrane (``None``: at rest),
    ``decay`` a 0-dim tensor for ``sinabs_lif`` or ``None`` for ``sinabs_iaf``, ``threshold`` a
    number or a 0-dim tensor on ``x``'s device -> ``(spikes, v)``; spikes are counts in ``x``'s dtype."""
    theta = torch.as_tensor(threshold, dtype=x.dtype, device=x.device)
    v = torch.zeros_like(x) if v is None else v
    v = v + x if decay is None else decay * v + x
    spikes = MultiSpike.apply(v, theta, surrogate, alpha)
    v = v - spikes * theta
    if decay is None:
        v = F.relu(v + theta) - theta  # sinabs: relu(v - min_v_mem) + min_v_mem, min_v_mem = -θ
    return spikes, v


def multispike_sequence(x: torch.Tensor, decay: torch.Tensor | None, threshold: float, surrogate: str,
                        alpha: float) -> torch.Tensor:
    """``x [T, B, ...]`` from rest -> spike counts ``[T, B, ...]`` (differentiable; see :func:`multispike_step`)."""
    v, theta = None, torch.tensor(threshold, dtype=x.dtype, device=x.device)  # one copy to the device, not one per step
    out = []
    for frame in x.unbind(0):
        spikes, v = multispike_step(frame, v, decay, theta, surrogate, alpha)
        out.append(spikes)
    return torch.stack(out)
