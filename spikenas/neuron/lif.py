"""Leaky integrate-and-fire layer over time-first tensors, on norse's box-LIF dynamics.

Dynamics per timestep (``dt = 1``, one step per input frame)::

    v <- v + (x - v) / tau              # leaky integration (norse lif_box_feed_forward_step)
    s  = H(v - threshold)               # spike, surrogate gradient chosen by name
    v <- (1 - s) v + s v_reset          # hard reset   (reset="hard")
    v <- v - s threshold                # soft reset   (reset="soft")

Defaults follow SNASNet (tau = 4/3, threshold 1.0, hard reset to 0) with norse's SuperSpike
surrogate, a fast-sigmoid of the same shape as SNASNet's ATan. ``learn_tau`` makes each layer's
time constant a trained parameter (PLIF, Fang et al., ICCV 2021): ``1 / tau = sigmoid(w)``,
``w`` initialised so that training starts at ``tau``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", FutureWarning)
    from norse.torch.functional.lif_box import (
        LIFBoxFeedForwardState,
        LIFBoxParameters,
        lif_box_feed_forward_step,
    )
    from norse.torch.functional.reset import reset_subtract, reset_value

from spikenas.errors import SpikenasError

# norse also knows "heaviside", which has no gradient (training would fail): not offered.
SURROGATES = ("super", "triangle", "tanh", "circ", "heavi_erfc")
RESETS = {"hard": reset_value, "soft": reset_subtract}


@dataclass(frozen=True)
class NeuronConfig:
    """LIF settings shared by every neuron of a network.

    Args:
        tau: membrane time constant in timesteps (> 1; SNASNet: 4/3).
        threshold: firing threshold (> 0).
        reset: ``"hard"`` (to ``v_reset``) or ``"soft"`` (subtract the threshold).
        v_reset: potential after a hard reset.
        surrogate: norse threshold method used for the backward pass, one of ``SURROGATES``.
        alpha: sharpness of the surrogate.
        learn_tau: train one time constant per LIF layer (PLIF), starting at ``tau``; adds
            one parameter per layer.
    """

    tau: float = 4.0 / 3.0
    threshold: float = 1.0
    reset: str = "hard"
    v_reset: float = 0.0
    surrogate: str = "super"
    alpha: float = 2.0
    learn_tau: bool = False

    def __post_init__(self) -> None:
        if not self.tau >= 1.0:
            raise SpikenasError(f"neuron tau must be >= 1 timestep, got {self.tau}")
        if self.learn_tau and not self.tau > 1.0:
            raise SpikenasError(f"neuron learn_tau needs tau > 1 (1/tau = sigmoid(w)), got {self.tau}")
        if not self.threshold > 0:
            raise SpikenasError(f"neuron threshold must be > 0, got {self.threshold}")
        if self.reset not in RESETS:
            raise SpikenasError(f"unknown neuron reset {self.reset!r}; known: {', '.join(RESETS)}")
        if self.surrogate not in SURROGATES:
            raise SpikenasError(
                f"unknown surrogate {self.surrogate!r}; known: {', '.join(SURROGATES)}"
            )


def _norse_parameters(c: NeuronConfig) -> LIFBoxParameters:
    # Plain floats keep the parameters device-agnostic (dt = 1: one step per frame).
    return LIFBoxParameters(
        tau_mem_inv=1.0 / c.tau,
        v_leak=0.0,
        v_th=c.threshold,
        v_reset=c.v_reset,
        method=c.surrogate,
        alpha=c.alpha,
        reset_method=RESETS[c.reset],
    )


class LIF(nn.Module):
    """LIF neurons, one per input element; trainable only with ``learn_tau`` (one scalar
    ``tau_logit``, ``1 / tau = sigmoid(tau_logit)``, shared by the layer).

    ``forward(x [T, B, ...]) -> spikes [T, B, ...]`` starts from rest (v = 0) every call;
    ``step(x [B, ...], v | None) -> (spikes [B, ...], v)`` advances one timestep with the
    membrane potential passed explicitly (``None`` = at rest). Spikes are 0/1 in ``x``'s dtype.
    When ``recorder`` is set (see :func:`record_spikes`) it receives every output as
    ``[T, B, ...]`` (``T = 1`` from ``step``).
    """

    def __init__(self, config: NeuronConfig | None = None) -> None:
        super().__init__()
        self.config = config or NeuronConfig()
        self._params = _norse_parameters(self.config)
        self.recorder: Callable[[torch.Tensor], None] | None = None
        if self.config.learn_tau:
            self.tau_logit = nn.Parameter(torch.tensor(-math.log(self.config.tau - 1.0)))

    def _rate(self) -> float | torch.Tensor:
        """``dt / tau`` of this layer: a float, or a 0-dim tensor when tau is learnt."""
        return torch.sigmoid(self.tau_logit) if self.config.learn_tau else 1.0 / self.config.tau

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_params")  # norse parameter tuples do not pickle
        state["recorder"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._params = _norse_parameters(self.config)

    def _norse(self) -> LIFBoxParameters:
        """norse's parameters of this layer, with the learnt rate when tau is learnt."""
        return self._params._replace(tau_mem_inv=self._rate()) if self.config.learn_tau else self._params

    def _step(self, x: torch.Tensor, v: torch.Tensor | None, params: LIFBoxParameters) -> tuple[torch.Tensor, torch.Tensor]:
        state = LIFBoxFeedForwardState(v=torch.zeros_like(x) if v is None else v)
        spikes, state = lif_box_feed_forward_step(x, state, params, dt=1.0)
        return spikes, state.v

    def step(self, x: torch.Tensor, v: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        spikes, v = self._step(x, v, self._norse())
        if self.recorder is not None:
            self.recorder(spikes.unsqueeze(0))
        return spikes, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            params = self._norse()  # once per sequence, not per timestep
            v = None
            out = []
            for frame in x.unbind(0):
                spikes, v = self._step(frame, v, params)
                out.append(spikes)
            spikes = torch.stack(out)
        else:
            spikes = self._forward_no_grad(x)
        if self.recorder is not None:
            self.recorder(spikes)
        return spikes

    def _forward_no_grad(self, x: torch.Tensor) -> torch.Tensor:
        """Norse's box-LIF step, bit for bit, with in-place updates (no surrogate needed).

        Scoring runs every LIF of thousands of candidates without gradients; this path does
        five tensor operations per timestep instead of norse's dozen and writes the spikes
        into one preallocated ``[T, B, ...]`` tensor (``tests/test_neuron.py`` checks equality).
        """
        c = self.config
        rate = self._rate()  # norse: dt * tau_mem_inv, dt = 1
        out = torch.empty_like(x)
        v = torch.zeros_like(x[0])
        for t in range(x.shape[0]):
            v.add_((x[t] - v).mul_(rate))  # v + dt * tau_inv * (x + v_leak - v), v_leak = 0
            fired = v > c.threshold  # norse: heaviside(v - v_th), i.e. v - v_th > 0
            out[t].copy_(fired)
            if c.reset == "hard":
                v.masked_fill_(fired, c.v_reset)
            else:
                v.sub_(fired * c.threshold)
        return out

    def extra_repr(self) -> str:
        c = self.config
        tau = f"tau={c.tau:.4g}" + (" (learnt)" if c.learn_tau else "")
        return f"{tau}, threshold={c.threshold}, reset={c.reset}, surrogate={c.surrogate}"


@contextlib.contextmanager
def record_spikes(module: nn.Module, recorder: Callable[..., None], named: bool = False) -> Iterator[int]:
    """Call ``recorder(spikes [T, B, ...])`` for every LIF output inside ``module`` (with
    ``named``, ``recorder(name, spikes)``, ``name`` the LIF's module name in ``module``).

    Yields the number of LIF layers found; recorders are removed on exit.
    """
    lifs = [(name, m) for name, m in module.named_modules() if isinstance(m, LIF)]
    for name, lif in lifs:
        lif.recorder = functools.partial(recorder, name) if named else recorder
    lifs = [lif for _, lif in lifs]
    try:
        yield len(lifs)
    finally:
        for lif in lifs:
            lif.recorder = None
