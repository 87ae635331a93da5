"""LIF dynamics as functions, the one place they are written (as norse's ``functional``).

Box LIF with ``dt = 1`` (one step per input frame), on norse's step function::

    v <- v + (x - v) * rate             # rate = dt / tau (norse lif_box_feed_forward_step)
    s  = H(v - threshold)               # spike; the surrogate gradient is norse's, by name
    v <- (1 - s) v + s v_reset          # hard reset
    v <- v - s threshold                # soft reset

:func:`lif_step` is one step with gradients; :func:`lif_sequence` runs it over ``[T, B, ...]``;
:func:`lif_sequence_no_grad` is the same arithmetic without a surrogate, updated in place, for
scoring (``docs/benchmarks.md``: it makes scoring a candidate 12% faster on the CPU;
``tests/test_neuron.py`` checks it equals :func:`lif_sequence` bit for bit).
"""

from __future__ import annotations

import warnings

import torch

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", FutureWarning)
    from norse.torch.functional.lif_box import (
        LIFBoxFeedForwardState,
        LIFBoxParameters,
        lif_box_feed_forward_step,
    )
    from norse.torch.functional.reset import reset_subtract, reset_value

RESETS = {"hard": reset_value, "soft": reset_subtract}


def lif_parameters(rate: float | torch.Tensor, threshold: float, reset: str, v_reset: float,
                   surrogate: str, alpha: float) -> LIFBoxParameters:
    """norse's parameters for one LIF layer: ``rate`` = ``dt / tau`` (a float, or a 0-dim tensor
    when the time constant is learnt), ``reset`` a key of :data:`RESETS`."""
    return LIFBoxParameters(tau_mem_inv=rate, v_leak=0.0, v_th=threshold, v_reset=v_reset,
                            method=surrogate, alpha=alpha, reset_method=RESETS[reset])


def lif_step(x: torch.Tensor, v: torch.Tensor | None, params: LIFBoxParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: ``x [B, ...]``, ``v`` the membrane (``None``: at rest) -> ``(spikes, v)``,
    spikes 0/1 in ``x``'s dtype with the surrogate gradient."""
    state = LIFBoxFeedForwardState(v=torch.zeros_like(x) if v is None else v)
    spikes, state = lif_box_feed_forward_step(x, state, params, dt=1.0)
    return spikes, state.v


def lif_sequence(x: torch.Tensor, params: LIFBoxParameters) -> torch.Tensor:
    """``x [T, B, ...]`` from rest -> spikes ``[T, B, ...]`` (differentiable)."""
    v = None
    out = []
    for frame in x.unbind(0):
        spikes, v = lif_step(frame, v, params)
        out.append(spikes)
    return torch.stack(out)


def lif_sequence_no_grad(x: torch.Tensor, rate: float | torch.Tensor, threshold: float, reset: str, v_reset: float) -> torch.Tensor:
    """:func:`lif_sequence`'s values without autograd: five in-place tensor operations per step
    instead of norse's dozen, spikes written into one preallocated ``[T, B, ...]`` tensor."""
    out = torch.empty_like(x)
    v = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        v.add_((x[t] - v).mul_(rate))  # v + dt * tau_inv * (x + v_leak - v), v_leak = 0
        fired = v > threshold  # norse: heaviside(v - v_th), i.e. v - v_th > 0
        out[t].copy_(fired)
        if reset == "hard":
            v.masked_fill_(fired, v_reset)
        else:
            v.sub_(fired * threshold)
    return out
