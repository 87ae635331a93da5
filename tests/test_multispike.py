"""sinabs's neuron models in spikenas (spikenas/neuron/multispike.py), without sinabs: the
documented dynamics by hand, step equal to sequence, settings refused in one line, learnt tau.
Against sinabs's own layers: tests/test_neuron_sinabs.py."""

from __future__ import annotations

import math

import pytest
import torch

from spikenas import SpikenasError
from spikenas.neuron import LIF, NeuronConfig
from spikenas.neuron.multispike import sinabs_tau


def sinabs_neuron(model: str, **kwargs) -> NeuronConfig:
    return NeuronConfig(model=model, reset="soft", surrogate="exp", **kwargs)


def test_an_iaf_fires_as_many_spikes_as_whole_thresholds_and_keeps_the_rest():
    x = torch.tensor([2.5, 0.5, 0.2, -5.0, 1.5]).reshape(5, 1)
    # v: 2.5 -> 2 spikes, 0.5; 1.0 -> 1 spike (v > 0 and 1.0 // 1 = 1), 0; 0.2 -> 0; -4.8 -> clamped to -1; 0.5 -> 0
    assert LIF(sinabs_neuron("sinabs_iaf"))(x).flatten().tolist() == [2, 1, 0, 0, 0]
    v = None
    layer = LIF(sinabs_neuron("sinabs_iaf"))
    for frame, expected in zip(x, [0.5, 0.0, 0.2, -1.0, 0.5]):
        _, v = layer.step(frame, v)
        assert v.item() == pytest.approx(expected)


def test_a_sinabs_lif_decays_by_one_minus_one_over_tau_and_adds_its_input_unscaled():
    layer = LIF(sinabs_neuron("sinabs_lif", tau=2.0, threshold=1.0))
    assert layer._decay().item() == pytest.approx(0.5, abs=1e-7)
    x = torch.tensor([0.8, 0.8, 3.0, 0.0]).reshape(4, 1)
    # v: 0.8; 0.4 + 0.8 = 1.2 -> 1 spike, 0.2; 0.1 + 3 = 3.1 -> 3 spikes, 0.1; 0.05
    assert layer(x).flatten().tolist() == [0, 1, 3, 0]
    assert sinabs_tau(0.5) == pytest.approx(1 / math.log(2)) and sinabs_tau(1.0) == 1e-30


@pytest.mark.parametrize("model", ["sinabs_lif", "sinabs_iaf"])
def test_step_equals_sequence_and_gradients_flow(model):
    layer = LIF(sinabs_neuron(model, threshold=0.7))
    x = (torch.randn(6, 3, 10, generator=torch.Generator().manual_seed(0)) * 2).requires_grad_()
    spikes = layer(x)
    spikes.sum().backward()
    assert x.grad.abs().sum() > 0 and spikes.max() >= 2
    v, stepped = None, []
    with torch.no_grad():
        for frame in x:
            s, v = layer.step(frame, v)
            stepped.append(s)
        assert torch.equal(torch.stack(stepped), spikes) and torch.equal(layer(x), spikes)


def test_a_learnt_time_constant_starts_at_tau_and_trains():
    layer = LIF(sinabs_neuron("sinabs_lif", tau=3.0, learn_tau=True))
    assert layer._decay().item() == pytest.approx(1 - 1 / 3, rel=1e-6)
    assert layer.sinabs_tau().item() == pytest.approx(sinabs_tau(1 / 3), rel=1e-6)
    layer(torch.randn(5, 4, 20, generator=torch.Generator().manual_seed(1)) * 2).sum().backward()
    assert layer.tau_logit.grad is not None and layer.tau_logit.grad != 0


@pytest.mark.parametrize("kwargs, culprit", [
    (dict(model="sinabs_lif"), "neuron model sinabs_lif resets by subtracting the threshold: set reset: soft"),
    (dict(model="sinabs_iaf", reset="soft", v_reset=0.5), "neuron model sinabs_iaf resets by subtracting"),
    (dict(model="sinabs_iaf", reset="soft", learn_tau=True, tau=2.0), "sinabs_iaf has no leak, so no time constant to learn"),
    (dict(model="sinabs_lif", reset="soft", surrogate="triangle"), "unknown surrogate 'triangle' for neuron model sinabs_lif; known: exp, super, atan"),
    (dict(surrogate="exp"), "unknown surrogate 'exp' for neuron model lif"),
    (dict(model="loihi_cuba"), "unknown neuron model 'loihi_cuba'; known: lif, sinabs_lif, sinabs_iaf"),
])
def test_settings_a_model_does_not_have_are_one_line_errors(kwargs, culprit):
    with pytest.raises(SpikenasError, match=culprit) as error:
        NeuronConfig(**kwargs)
    assert "\n" not in str(error.value)
