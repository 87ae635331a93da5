"""LIF neurons: documented dynamics, resets, surrogates by name, gradients, pickling."""

from __future__ import annotations

import io
import pickle
import warnings
from unittest import mock

import pytest
import torch

from spikenas import SpikenasError
from spikenas.neuron import LIF, SURROGATES, NeuronConfig, record_spikes
from spikenas.ops import SpikingSequential


def reference_lif(x: torch.Tensor, c: NeuronConfig) -> torch.Tensor:
    """The dynamics documented in spikenas/neuron/lif.py, written out by hand."""
    v = torch.zeros_like(x[0])
    out = []
    for frame in x:
        v = v + (frame - v) / c.tau
        s = (v > c.threshold).to(x.dtype)
        v = (1 - s) * v + s * c.v_reset if c.reset == "hard" else v - s * c.threshold
        out.append(s)
    return torch.stack(out)


def test_defaults_follow_snasnet():
    c = NeuronConfig()
    assert (c.tau, c.threshold, c.reset, c.v_reset) == (4 / 3, 1.0, "hard", 0.0)


def test_defaults_spike_on_real_scale_inputs():
    # batch-normalised activations are ~N(0, 1): a healthy fraction of neurons must fire
    x = torch.randn(5, 64, 256)
    rate = LIF()(x).mean().item()
    assert 0.03 < rate < 0.5
    # a constant input of 1.2 x threshold fires every other step from rest
    assert LIF()(torch.full((6, 1), 1.2)).flatten().tolist() == [0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_dynamics_match_hand_computation(reset):
    c = NeuronConfig(reset=reset, tau=2.0, threshold=0.8, v_reset=0.1 if reset == "hard" else 0.0)
    x = torch.rand(8, 4, 50) * 2
    assert torch.equal(LIF(c)(x), reference_lif(x, c))


def test_hard_and_soft_reset_differ():
    x = torch.full((4, 1), 3.0)  # v = 2.25 at the first step: far above threshold
    lif_hard, lif_soft = LIF(NeuronConfig(reset="hard")), LIF(NeuronConfig(reset="soft"))
    _, v_hard = lif_hard.step(x[0], None)
    _, v_soft = lif_soft.step(x[0], None)
    assert v_hard.item() == pytest.approx(0.0)
    assert v_soft.item() == pytest.approx(2.25 - 1.0)
    x = torch.rand(10, 2, 100) * 2.5
    assert not torch.equal(lif_hard(x), lif_soft(x))


def test_step_equals_sequence():
    lif = LIF()
    x = torch.randn(5, 3, 7) * 2
    v, frames = None, []
    for frame in x:
        s, v = lif.step(frame, v)
        frames.append(s)
    assert torch.equal(torch.stack(frames), lif(x))


def test_output_is_binary_in_input_dtype():
    y = LIF()(torch.randn(3, 2, 10, dtype=torch.float64) * 3)
    assert y.dtype == torch.float64
    assert set(y.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_surrogate_by_name_gives_gradients(surrogate):
    x = (torch.randn(5, 8, 20) + 0.5).requires_grad_()
    LIF(NeuronConfig(surrogate=surrogate))(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_surrogate_changes_gradient_not_spikes():
    x = torch.randn(5, 8, 20) + 0.5
    grads, spikes = [], []
    for surrogate in ("super", "triangle"):
        xi = x.clone().requires_grad_()
        y = LIF(NeuronConfig(surrogate=surrogate))(xi)
        y.sum().backward()
        grads.append(xi.grad)
        spikes.append(y.detach())
    assert torch.equal(spikes[0], spikes[1])
    assert not torch.allclose(grads[0], grads[1])


@pytest.mark.parametrize(
    "kwargs, culprit",
    [
        ({"surrogate": "arctan"}, "'arctan'"),
        ({"surrogate": "heaviside"}, "'heaviside'"),  # no gradient: not offered
        ({"reset": "zero"}, "'zero'"),
        ({"tau": 0.5}, "0.5"),
        ({"threshold": 0}, "threshold"),
    ],
)
def test_bad_config_is_one_line_error(kwargs, culprit):
    with pytest.raises(SpikenasError) as info:
        NeuronConfig(**kwargs)
    assert "\n" not in str(info.value) and culprit in str(info.value)


def test_gradients_flow_through_an_operation():
    op = SpikingSequential(torch.nn.Linear(10, 10), LIF(), torch.nn.Linear(10, 3))
    x = torch.randn(5, 4, 10) * 3
    op(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in op.parameters())


def test_pickling_and_torch_save():
    model = SpikingSequential(torch.nn.Linear(6, 6), LIF(NeuronConfig(reset="soft", surrogate="tanh")))
    x = torch.randn(4, 2, 6) * 3
    clone = pickle.loads(pickle.dumps(model))
    assert clone[1].config == model[1].config
    assert torch.equal(clone(x), model(x))
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert torch.equal(loaded(x), model(x))


def test_pickle_drops_recorder():
    lif = LIF()
    with record_spikes(lif, lambda s: None):
        clone = pickle.loads(pickle.dumps(lif))
    assert clone.recorder is None


def test_record_spikes():
    model = SpikingSequential(LIF(), torch.nn.Linear(6, 5), LIF())
    seen = []
    with record_spikes(model, seen.append) as n:
        assert n == 2
        model(torch.randn(3, 2, 6) * 3)
        model.step(torch.randn(2, 6), None)
    assert [tuple(s.shape) for s in seen] == [(3, 2, 6), (3, 2, 5), (1, 2, 6), (1, 2, 5)]
    model(torch.randn(3, 2, 6))
    assert len(seen) == 4  # recorders removed on exit


@pytest.mark.parametrize("reset, v_reset", [("hard", 0.0), ("hard", 0.3), ("hard", -0.2), ("soft", 0.0)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "expanded", "one_step"])
def test_inference_path_equals_norse_step_bit_for_bit(reset, v_reset, layout):
    """The scoring loop's spikes are norse's, whatever the reset, the input's memory layout
    (the encoder repeats one frame over T without copying) and the number of steps."""
    lif = LIF(NeuronConfig(reset=reset, v_reset=v_reset, threshold=0.8))
    x = torch.randn(6, 4, 3, 5, 5, generator=torch.Generator().manual_seed(1)) * 2
    if layout == "channels_last":
        x = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    elif layout == "expanded":
        x = x[0].expand(6, *x.shape[1:])
    elif layout == "one_step":
        x = x[:1]
    v, steps = None, []
    for frame in x:
        spikes, v = lif.step(frame, v)
        steps.append(spikes)
    with torch.inference_mode():
        fast = lif(x)
    assert torch.equal(fast, torch.stack(steps))
    assert fast.sum() > 0


def test_learnt_tau_starts_at_tau_and_trains():
    lif = LIF(NeuronConfig(tau=2.0, learn_tau=True))
    assert torch.sigmoid(lif.tau_logit).item() == pytest.approx(0.5)
    fixed = LIF(NeuronConfig(tau=2.0))
    x = torch.randn(5, 3, 8, generator=torch.Generator().manual_seed(0)).mul(3).requires_grad_()
    assert torch.equal(lif(x), fixed(x))  # same dynamics at initialisation
    lif(x).sum().backward()
    assert lif.tau_logit.grad is not None and lif.tau_logit.grad.abs() > 0
    assert [name for name, _ in lif.named_parameters()] == ["tau_logit"]
    assert list(fixed.parameters()) == []


@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_learnt_tau_inference_path_equals_training_path(reset):
    lif = LIF(NeuronConfig(reset=reset, learn_tau=True))
    with torch.no_grad():
        lif.tau_logit.fill_(0.3)  # tau = 1 / sigmoid(0.3), not the initial one
    x = torch.randn(6, 4, 3, 5, 5, generator=torch.Generator().manual_seed(1)) * 2
    training = lif(x.clone().requires_grad_())
    with torch.inference_mode():
        fast = lif(x)
    assert torch.equal(fast, training.detach())
    assert fast.sum() > 0


def test_learnt_tau_needs_tau_above_one():
    with pytest.raises(SpikenasError, match="learn_tau needs tau > 1"):
        NeuronConfig(tau=1.0, learn_tau=True)


@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_the_compiled_recurrence_equals_the_eager_one_bit_for_bit(reset):
    """Inside compiled_inference a large enough layer runs one compiled kernel; its spikes are
    the eager path's exactly (a smaller layer stays eager)."""
    from spikenas.neuron import compiled_inference
    from spikenas.neuron import functional

    lif = LIF(NeuronConfig(reset=reset))
    x = torch.randn(6, 4, 3, 5, 5, generator=torch.Generator().manual_seed(1)) * 2
    with torch.inference_mode():
        eager = lif(x)
        calls = []
        compiled = functional._compiled_recurrence()
        with mock.patch.object(functional, "_compiled_recurrence", lambda: lambda *a: calls.append(1) or compiled(*a)):
            with compiled_inference(min_elements=x.numel()), warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)  # the eager fallback would warn
                fast = lif(x)
                lif(x[:, :2])  # below min_elements: eager
    assert calls == [1]
    assert torch.equal(fast, eager) and eager.sum() > 0


def test_a_failing_compiler_warns_once_and_leaves_scoring_eager():
    from spikenas.neuron import compiled_inference
    from spikenas.neuron import functional

    def broken(*args):
        raise RuntimeError("no C++ compiler")

    lif = LIF(NeuronConfig())
    x = torch.randn(4, 2, 8, generator=torch.Generator().manual_seed(0)) * 3
    with torch.inference_mode(), mock.patch.object(functional, "_compiled_recurrence", lambda: broken):
        eager = lif(x)
        with compiled_inference(min_elements=1):
            with pytest.warns(RuntimeWarning, match="compiled LIF recurrence failed"):
                assert torch.equal(lif(x), eager)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                assert torch.equal(lif(x), eager)  # not tried again


def test_the_arctangent_surrogate_has_its_closed_form_gradient_and_norses_spikes():
    import math

    from spikenas.neuron.functional import ArcTan

    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    ArcTan.apply(x, 2.0).sum().backward()
    assert torch.allclose(x.grad, 2.0 / 2 / (1 + (math.pi / 2 * 2.0 * x.detach()) ** 2))
    # through a LIF layer: the same spikes as the default surrogate, the arctangent's gradient at the first step
    current = torch.rand(3, 4, 6, generator=torch.Generator().manual_seed(0)) * 3
    inputs = current.clone().requires_grad_(True)
    spikes = LIF(NeuronConfig(surrogate="atan", tau=2.0, threshold=1.0))(inputs)
    assert torch.equal(spikes, LIF(NeuronConfig(tau=2.0, threshold=1.0))(current))
    spikes[0].sum().backward()
    v = current[0] * 0.5  # v after the first step from rest, rate 1/2
    assert torch.allclose(inputs.grad[0], 0.5 * 1.0 / (1 + (math.pi / 2 * 2.0 * (v - 1.0)) ** 2))
