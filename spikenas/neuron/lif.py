"""Leaky integrate-and-fire layer over time-first tensors, with one of three neuron models
(:data:`MODELS`): ``lif``, norse's box LIF (:mod:`spikenas.neuron.functional`: one spike per step
at most, hard or soft reset), or sinabs's ``sinabs_lif`` and ``sinabs_iaf``
(:mod:`spikenas.neuron.multispike`: several spikes per step, reset by subtraction; IAF without
leak, as SynSense's Speck and DYNAP-CNN run it).

Defaults follow SNASNet (tau = 4/3, threshold 1.0, hard reset to 0) with norse's SuperSpike
surrogate, a fast-sigmoid of the same shape as SNASNet's ATan. ``learn_tau`` makes each layer's
time constant a trained parameter (PLIF, Fang et al., ICCV 2021): ``1 / tau = sigmoid(w)``,
``w`` initialised so that training starts at ``tau``.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from spikenas.base.errors import SpikenasError
from spikenas.neuron.functional import RESETS, LIFBoxParameters, lif_parameters, lif_sequence, lif_sequence_inference, lif_step
from spikenas.neuron.fused import FUSED_SURROGATES, fused_lif
from spikenas.neuron.multispike import MULTISPIKE_SURROGATES, multispike_sequence, multispike_step, sinabs_tau

# norse's, and SNASNet's arctangent ("atan", spikenas.neuron.functional.ArcTan); norse also
# knows "heaviside", which has no gradient (training would fail): not offered.
SURROGATES = ("super", "triangle", "tanh", "circ", "heavi_erfc", "atan")

# the neuron models: spikenas's (norse's box LIF) and sinabs's two, which only sinabs runs as trained
MODELS = ("lif", "sinabs_lif", "sinabs_iaf")


@dataclass(frozen=True)
class NeuronConfig:
    """Neuron settings shared by every neuron of a network.

    Args:
        tau: membrane time constant in timesteps (> 1; SNASNet: 4/3): the membrane decays by
            ``1 - 1/tau`` per step (``lif`` adds ``x / tau``, ``sinabs_lif`` adds ``x``;
            ``sinabs_iaf`` has no leak and does not use it).
        threshold: firing threshold (> 0).
        reset: ``"hard"`` (to ``v_reset``) or ``"soft"`` (subtract the threshold); the sinabs
            models reset by subtraction only (``soft``).
        v_reset: potential after a hard reset.
        surrogate: the backward pass's surrogate gradient: for ``lif`` one of ``SURROGATES``
            (norse's threshold methods, or ``atan``: SNASNet's, spikingjelly's ``ATan``); for the
            sinabs models one of ``exp`` (sinabs's default ``SingleExponential``), ``super``, ``atan``.
        alpha: sharpness of the surrogate (``exp``: ``1 / grad_width``; 2 is sinabs's default).
        learn_tau: train one time constant per LIF layer (PLIF), starting at ``tau``; adds
            one parameter per layer (not for ``sinabs_iaf``, which has none).
        model: ``lif`` (spikenas's: norse's box LIF, one spike per step at most), ``sinabs_lif``
            or ``sinabs_iaf`` (sinabs's LIF and IAF as ``sinabs.from_nir`` builds them: several
            spikes per step, reset by subtraction; the IAF's membrane is kept at or above
            ``-threshold``). See :data:`MODELS`.
    """

    tau: float = 4.0 / 3.0
    threshold: float = 1.0
    reset: str = "hard"
    v_reset: float = 0.0
    surrogate: str = "super"
    alpha: float = 2.0
    learn_tau: bool = False
    model: str = "lif"

    def __post_init__(self) -> None:
        for name in ("tau", "threshold", "v_reset", "alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpikenasError(f"neuron {name} must be a number, got {str(value)[:40]!r}")
        if not self.tau >= 1.0:
            raise SpikenasError(f"neuron tau must be >= 1 timestep, got {self.tau}")
        if self.learn_tau and not self.tau > 1.0:
            raise SpikenasError(f"neuron learn_tau needs tau > 1 (1/tau = sigmoid(w)), got {self.tau}")
        if not self.threshold > 0:
            raise SpikenasError(f"neuron threshold must be > 0, got {self.threshold}")
        if self.reset not in RESETS:
            raise SpikenasError(f"unknown neuron reset {self.reset!r}; known: {', '.join(RESETS)}")
        if self.model not in MODELS:
            raise SpikenasError(f"unknown neuron model {str(self.model)[:40]!r}; known: {', '.join(MODELS)}")
        surrogates = SURROGATES if self.model == "lif" else MULTISPIKE_SURROGATES
        if self.surrogate not in surrogates:
            raise SpikenasError(f"unknown surrogate {self.surrogate!r} for neuron model {self.model}; "
                                f"known: {', '.join(surrogates)}")
        if self.model != "lif" and (self.reset != "soft" or self.v_reset != 0.0):
            raise SpikenasError(f"neuron model {self.model} resets by subtracting the threshold: set reset: soft "
                                f"(and v_reset 0), got reset {self.reset!r}, v_reset {self.v_reset}")
        if self.model == "sinabs_iaf" and self.learn_tau:
            raise SpikenasError("neuron model sinabs_iaf has no leak, so no time constant to learn: set learn_tau: false")


def _norse_parameters(c: NeuronConfig) -> LIFBoxParameters:
    # Plain floats keep the parameters device-agnostic.
    return lif_parameters(1.0 / c.tau, c.threshold, c.reset, c.v_reset, c.surrogate, c.alpha)


class LIF(nn.Module):
    """Spiking neurons of ``config.model``, one per input element; trainable only with
    ``learn_tau`` (one scalar ``tau_logit``, ``1 / tau = sigmoid(tau_logit)``, shared by the layer).

    ``forward(x [T, B, ...]) -> spikes [T, B, ...]`` starts from rest (v = 0) every call;
    ``step(x [B, ...], v | None) -> (spikes [B, ...], v)`` advances one timestep with the
    membrane potential passed explicitly (``None`` = at rest). Spikes are in ``x``'s dtype:
    0/1 for ``lif``, counts (0, 1, 2, ...) for the sinabs models.
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

    def sinabs_tau(self) -> torch.Tensor:
        """``sinabs_lif``: sinabs's ``tau_mem`` in steps, a float32 0-dim tensor (learnt: ``1 /
        softplus(tau_logit)``, whose decay ``exp(-1 / tau_mem)`` is ``1 - sigmoid(tau_logit)``)."""
        if self.config.learn_tau:
            return 1.0 / F.softplus(self.tau_logit)
        return torch.tensor(sinabs_tau(1.0 / self.config.tau), dtype=torch.float32)  # 0-dim: mixes with any device

    def _decay(self) -> torch.Tensor | None:
        """The sinabs models' decay per step as sinabs computes it, ``exp(-1 / tau_mem)``
        (``None`` for ``sinabs_iaf``, which has no leak)."""
        return None if self.config.model == "sinabs_iaf" else torch.exp(-1.0 / self.sinabs_tau())

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

    def step(self, x: torch.Tensor, v: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        if c.model == "lif":
            spikes, v = lif_step(x, v, self._norse())
        else:
            spikes, v = multispike_step(x, v, self._decay(), c.threshold, c.surrogate, c.alpha)
        if self.recorder is not None:
            self.recorder(spikes.unsqueeze(0))
        return spikes, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.model != "lif":
            spikes = multispike_sequence(x, self._decay(), c.threshold, c.surrogate, c.alpha)
        elif torch.is_grad_enabled() and x.requires_grad:
            if c.surrogate in FUSED_SURROGATES:  # one autograd node per layer (spikenas.neuron.fused)
                spikes = fused_lif(x, self._rate(), c.threshold, c.reset, c.v_reset, c.surrogate, c.alpha)
            else:
                spikes = lif_sequence(x, self._norse())  # parameters once per sequence, not per step
        else:
            spikes = lif_sequence_inference(x, self._rate(), c.threshold, c.reset, c.v_reset)
        if self.recorder is not None:
            self.recorder(spikes)
        return spikes

    def extra_repr(self) -> str:
        c = self.config
        tau = "no leak" if c.model == "sinabs_iaf" else f"tau={c.tau:.4g}" + (" (learnt)" if c.learn_tau else "")
        return f"{c.model}, {tau}, threshold={c.threshold}, reset={c.reset}, surrogate={c.surrogate}"


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
