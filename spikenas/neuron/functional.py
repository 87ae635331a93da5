"""LIF dynamics as functions, on norse's (as norse's ``functional``); the training path's
fused recurrence (:mod:`spikenas.neuron.fused`) repeats this arithmetic and is tested against it.

Box LIF with ``dt = 1`` (one step per input frame), on norse's step function::

    v <- v + (x - v) * rate             # rate = dt / tau (norse lif_box_feed_forward_step)
    s  = H(v - threshold)               # spike; the surrogate gradient is norse's, by name
    v <- (1 - s) v + s v_reset          # hard reset
    v <- v - s threshold                # soft reset

:func:`lif_step` is one step with gradients; :func:`lif_sequence` runs it over ``[T, B, ...]``;
:func:`lif_sequence_no_grad` is the same arithmetic without a surrogate, in place, for
scoring (``tests/test_neuron.py`` checks its spikes equal :func:`lif_sequence`'s bit for bit). Inside
:func:`compiled_inference`, layers of at least ``min_elements`` run that recurrence as one
kernel compiled by ``torch.compile`` instead (every timestep in one pass over memory, not six kernels
per step; equal bit for bit; ``docs/benchmarks.md``: 2.3-4.5x faster per layer than the loop on the CPU).
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from typing import Iterator

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


class ArcTan(torch.autograd.Function):
    """SNASNet's surrogate (spikingjelly's ``surrogate.ATan``), which norse does not have:
    forward the Heaviside step ``x > 0``; backward ``alpha / 2 / (1 + (pi / 2 * alpha * x)^2)``,
    the derivative of ``atan(pi / 2 * alpha * x) / pi + 1 / 2``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * ctx.alpha / 2 / (1 + (math.pi / 2 * ctx.alpha * x) ** 2), None


def lif_parameters(rate: float | torch.Tensor, threshold: float, reset: str, v_reset: float,
                   surrogate: str, alpha: float) -> LIFBoxParameters:
    """norse's parameters for one LIF layer: ``rate`` = ``dt / tau`` (a float, or a 0-dim tensor
    when the time constant is learnt), ``reset`` a key of :data:`RESETS`."""
    return LIFBoxParameters(tau_mem_inv=rate, v_leak=0.0, v_th=threshold, v_reset=v_reset,
                            method=surrogate, alpha=alpha, reset_method=RESETS[reset])


def lif_step(x: torch.Tensor, v: torch.Tensor | None, params: LIFBoxParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: ``x [B, ...]``, ``v`` the membrane (``None``: at rest) -> ``(spikes, v)``,
    spikes 0/1 in ``x``'s dtype with the surrogate gradient (norse's step; its arithmetic
    with :class:`ArcTan` for ``atan``)."""
    v = torch.zeros_like(x) if v is None else v
    if params.method == "atan":
        v = v + params.tau_mem_inv * (x + params.v_leak - v)
        spikes = ArcTan.apply(v - params.v_th, params.alpha)
        return spikes, params.reset_method(spikes, v, params.v_reset, params.v_th)
    spikes, state = lif_box_feed_forward_step(x, LIFBoxFeedForwardState(v=v), params, dt=1.0)
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
    """:func:`lif_sequence`'s spikes without autograd, for scoring: each step's comparison
    writes 0/1 straight into the preallocated ``[T, B, ...]`` output and the reset multiplies
    by its complement, so no boolean mask is made (``masked_fill_`` and bool-to-float copies
    made the old loop 3x slower: ``bench/lif_step.py``); the other buffers are reused. Equal
    to :func:`lif_sequence` spike for spike (a membrane may differ in the sign of a zero)."""
    steps = x.shape[0]
    out = torch.empty_like(x)
    v = x[0] * rate  # the first step from rest: 0 + (x - 0) * rate
    buffer = torch.empty_like(v)
    for t in range(steps):
        if t:
            torch.sub(x[t], v, out=buffer)
            v.add_(buffer.mul_(rate))  # v + dt * tau_inv * (x + v_leak - v), v_leak = 0
        torch.gt(v, threshold, out=out[t])  # norse: heaviside(v - v_th), i.e. v - v_th > 0
        if t + 1 == steps:
            break  # the last reset is never read
        if reset == "hard":  # v <- (1 - s) v + s v_reset
            v.mul_(torch.le(v, threshold, out=buffer))
            if v_reset:
                v.add_(out[t], alpha=v_reset)
        else:  # v <- v - s threshold
            v.sub_(out[t], alpha=threshold)
    return out


_compile_min_elements: int | None = None  # inside compiled_inference: the size that is compiled


@contextlib.contextmanager
def compiled_inference(min_elements: int = 1 << 24) -> Iterator[None]:
    """Within the block, no-grad LIF layers whose input has at least ``min_elements``
    elements (the default: 16.8M, e.g. ``[5, 256, 128, 32, 32]`` has 168M) run a compiled
    recurrence. Compiling costs seconds per new shape, so small layers, which would never pay
    it back, stay eager. Where ``torch.compile`` cannot work (no C++ compiler), it warns once
    and the rest of the block stays eager."""
    global _compile_min_elements
    previous, _compile_min_elements = _compile_min_elements, min_elements
    try:
        yield
    finally:
        _compile_min_elements = previous


def lif_sequence_inference(x: torch.Tensor, rate: float | torch.Tensor, threshold: float, reset: str, v_reset: float) -> torch.Tensor:
    """:func:`lif_sequence_no_grad`, compiled where :func:`compiled_inference` asks for it."""
    global _compile_min_elements
    if _compile_min_elements is not None and x.numel() >= _compile_min_elements and isinstance(rate, float):
        try:
            return _compiled_recurrence()(x, rate, threshold, reset == "hard", v_reset)
        except Exception as exc:  # a compiler missing or failing: never the user's problem
            warnings.warn(f"spikenas: the compiled LIF recurrence failed ({type(exc).__name__}); scoring stays eager",
                          RuntimeWarning, stacklevel=2)
            _compile_min_elements = None
    return lif_sequence_no_grad(x, rate, threshold, reset, v_reset)


def _recurrence(x: torch.Tensor, rate: float, threshold: float, hard: bool, v_reset: float) -> torch.Tensor:
    """:func:`lif_sequence_no_grad`'s arithmetic, out of place, for the compiler to fuse."""
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        v = v + (x[t] - v) * rate
        fired = v > threshold
        out.append(fired.to(x.dtype))
        v = torch.where(fired, v_reset, v) if hard else v - fired.to(x.dtype) * threshold
    return torch.stack(out)


@functools.cache
def _compiled_recurrence():
    return torch.compile(_recurrence)
