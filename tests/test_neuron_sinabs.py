"""sinabs's neuron models against sinabs's own layers, on random inputs: spikes, membranes and
surrogate gradients of ``sinabs_lif`` and ``sinabs_iaf`` equal sinabs 3.1's ``LIF(norm_input=False)``
and ``IAF(min_v_mem=-threshold)`` (as ``sinabs.from_nir`` builds them from a NIR ``LIF`` and ``IF``),
and a network of them exported for sinabs runs in plain ``sinabs.from_nir`` as it does in spikenas.

Runs where sinabs is installed (``nox -s spikenas_beside_sinabs``, which the consumer tests run);
skipped elsewhere (``tests/toolchains.py``)."""

from __future__ import annotations

import math

import nir
import pytest
import torch
import yaml

from spikenas import Genotype
from spikenas.app.cli import main
from spikenas.export import TARGETS, network_to_nir
from spikenas.export.graph import write
from spikenas.neuron import LIF, NeuronConfig, record_spikes
from test_export import FORWARD, _final_and_checkpoint, images, trained_like
from toolchains import require

SHAPE = (4, 3, 5, 5)  # [B, C, H, W]
STEPS = 12


def sinabs_layer(layer: LIF, surrogate_grad_fn) -> torch.nn.Module:
    """sinabs's layer for ``layer``'s neurons, with per-channel parameters as a spikenas file holds them."""
    sinabs = require("sinabs")
    c = layer.config
    channels = SHAPE[1]
    threshold = torch.full((channels, 1, 1), c.threshold)
    if c.model == "sinabs_iaf":
        return sinabs.layers.IAF(spike_threshold=threshold, min_v_mem=-threshold, surrogate_grad_fn=surrogate_grad_fn)
    tau = layer.sinabs_tau().detach().expand(channels, 1, 1).clone()
    return sinabs.layers.LIF(tau_mem=tau, spike_threshold=threshold, norm_input=False, surrogate_grad_fn=surrogate_grad_fn)


def surrogate_of(name: str, alpha: float):
    """sinabs's own ``SingleExponential`` for ``exp``; spikenas's other two written as sinabs surrogates."""
    sinabs = require("sinabs")
    if name == "exp":
        return sinabs.activation.SingleExponential(grad_width=1 / alpha)
    if name == "super":
        return lambda v, threshold: 1 / ((v - threshold).abs() + 1) ** 2
    return lambda v, threshold: alpha / 2 / (1 + (math.pi / 2 * alpha * (v - threshold)) ** 2)


def run_both(config: NeuronConfig, x: torch.Tensor, surrogate_grad_fn=None):
    """``(spikenas's spikes, final membrane, x's gradient)`` and sinabs's, for ``x [T, B, ...]``
    and a random weighting of the spikes as the loss."""
    ours, weights = LIF(config), torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    theirs = sinabs_layer(ours, surrogate_grad_fn or surrogate_of(config.surrogate, config.alpha))
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    spikes = ours(x_ours)
    (spikes * weights).sum().backward()
    v = None
    with torch.no_grad():
        for frame in x:
            _, v = ours.step(frame, v)
    their_spikes = theirs(x_theirs.transpose(0, 1)).transpose(0, 1)  # sinabs is batch first
    (their_spikes * weights).sum().backward()
    return (spikes, v, x_ours.grad), (their_spikes, theirs.v_mem, x_theirs.grad)


@pytest.mark.parametrize("model", ["sinabs_lif", "sinabs_iaf"])
@pytest.mark.parametrize("tau, threshold, scale", [(4 / 3, 1.0, 2.0), (2.0, 0.5, 1.5), (10.0, 0.3, 0.4), (1.0, 1.0, 3.0)])
def test_spikes_and_membranes_equal_sinabs_bit_for_bit(model, tau, threshold, scale):
    x = torch.randn(STEPS, *SHAPE, generator=torch.Generator().manual_seed(int(tau * 10))) * scale
    config = NeuronConfig(model=model, tau=tau, threshold=threshold, reset="soft", surrogate="exp")
    (spikes, v, _), (their_spikes, their_v, _) = run_both(config, x)
    assert spikes.max() >= 2 and spikes.sum() > 0  # several spikes per step: the multi-spike path is tested
    assert torch.equal(spikes, their_spikes)
    assert torch.equal(v, their_v)
    if model == "sinabs_iaf":
        assert their_v.min() >= -threshold and (their_v == -threshold).any()  # the clamp was reached


@pytest.mark.parametrize("model", ["sinabs_lif", "sinabs_iaf"])
@pytest.mark.parametrize("surrogate, alpha", [("exp", 2.0), ("exp", 4.0), ("super", 2.0), ("atan", 2.0)])
def test_surrogate_gradients_equal_sinabs(model, surrogate, alpha):
    x = torch.randn(STEPS, *SHAPE, generator=torch.Generator().manual_seed(7)) * 1.5
    config = NeuronConfig(model=model, threshold=0.8, reset="soft", surrogate=surrogate, alpha=alpha)
    (spikes, _, grad), (their_spikes, _, their_grad) = run_both(config, x)
    assert torch.equal(spikes, their_spikes)
    assert grad.abs().sum() > 0
    assert torch.allclose(grad, their_grad, rtol=1e-5, atol=1e-6), (grad - their_grad).abs().max()


def test_a_learnt_time_constant_runs_as_sinabs_runs_the_written_one():
    layer = LIF(NeuronConfig(model="sinabs_lif", tau=3.0, reset="soft", surrogate="exp", learn_tau=True))
    with torch.no_grad():
        layer.tau_logit.add_(0.37)  # trained away from its start
    x = torch.randn(STEPS, *SHAPE, generator=torch.Generator().manual_seed(5)) * 2
    theirs = sinabs_layer(layer, surrogate_of("exp", 2.0))
    with torch.no_grad():
        assert torch.equal(layer(x), theirs(x.transpose(0, 1)).transpose(0, 1))


@pytest.mark.parametrize("target, model", [("sinabs", "sinabs_lif"), ("sinabs", "sinabs_iaf"), ("speck", "sinabs_iaf")])
def test_the_exported_file_runs_in_plain_sinabs_from_nir_as_in_spikenas(target, model, tmp_path):
    sinabs = require("sinabs")
    net = trained_like(Genotype((FORWARD, FORWARD)), NeuronConfig(model=model, threshold=0.5, reset="soft", surrogate="exp"))
    path = tmp_path / "net.nir"
    write(path, network_to_nir(net, target=target))
    graph = nir.read(str(path))
    kinds = {type(n) for name, n in graph.nodes.items() if not name.startswith("bridge")}
    assert (nir.IF in kinds) == (model == "sinabs_iaf") and (nir.LIF in kinds) == (model == "sinabs_lif")
    x = images()
    with torch.no_grad():
        expected = net.timestep_logits(x)
        counts = []
        with record_spikes(net, lambda s: counts.append(float(s.max()))):
            net.timestep_logits(x)
        assert max(counts) >= 2  # several spikes per step somewhere: sinabs's own neurons are exercised
        model_ = sinabs.from_nir(graph, num_timesteps=1)  # no module edited
        sinabs.reset_states(model_)
        state, got = None, []
        for _ in range(net.macro.timesteps):
            logits, state = model_(x, state)
            got.append(logits)
    assert torch.allclose(torch.stack(got), expected, atol=1e-5)


@pytest.mark.parametrize("target, model", [("sinabs", "sinabs_lif"), ("speck", "sinabs_iaf")])
def test_search_for_sinabs_fit_and_export_give_a_file_plain_sinabs_runs_as_trained(target, model, tmp_path, capsys):
    require("sinabs")
    final, ckpt = _final_and_checkpoint(tmp_path, "--export_target", target)  # spikenas search, then spikenas fit
    config = yaml.safe_load(final.read_text())["model"]
    assert config["export_target"] == target and config["neuron"]["model"] == model
    out = tmp_path / "net.nir"
    main(["export", "--config", str(final), "--ckpt_path", str(ckpt), "--output", str(out)])  # the recorded target
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"for {TARGETS[target].reader}" in line and "run back by sinabs 3.1" in line and "same class for 16/16" in line, line
