"""The fused training LIF (one autograd node per layer) against norse's step-by-step path."""

from __future__ import annotations

import itertools

import pytest
import torch

from spikenas.neuron import LIF, SURROGATES, NeuronConfig
from spikenas.neuron.functional import lif_sequence
from spikenas.neuron.fused import FUSED_SURROGATES, fused_lif

CASES = [(s, r, v, learn) for s, r, v, learn in itertools.product(FUSED_SURROGATES, ["hard", "soft"], [0.0, 0.3], [False, True])
         if not (r == "soft" and v)]


@pytest.mark.parametrize("surrogate, reset, v_reset, learn_tau", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_spikes_bit_for_bit_and_gradients_as_norses(surrogate, reset, v_reset, learn_tau, dtype):
    g = torch.Generator().manual_seed(0)
    config = NeuronConfig(surrogate=surrogate, reset=reset, v_reset=v_reset, learn_tau=learn_tau, threshold=0.8)
    layer = LIF(config).to(dtype)
    current = (torch.randn(6, 8, 3, 5, 5, generator=g, dtype=dtype) * 2)
    weights = torch.randn(current.shape, generator=g, dtype=dtype)

    def run(path):
        x = current.clone().requires_grad_(True)
        layer.zero_grad(set_to_none=True)
        spikes = path(x)
        (spikes * weights).sum().backward()
        return spikes.detach(), x.grad, layer.tau_logit.grad if learn_tau else None

    norse = run(lambda x: lif_sequence(x, layer._norse()))
    fused = run(lambda x: fused_lif(x, layer._rate(), config.threshold, reset, v_reset, surrogate, config.alpha))
    assert torch.equal(fused[0], norse[0]) and fused[0].dtype == dtype
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    torch.testing.assert_close(fused[1], norse[1], **tolerance)
    if learn_tau:
        torch.testing.assert_close(fused[2], norse[2], **tolerance)


def test_training_layers_use_the_fused_path_where_it_exists_and_norses_elsewhere():
    x = torch.randn(3, 2, 4, requires_grad=True)
    for surrogate in SURROGATES:
        node = LIF(NeuronConfig(surrogate=surrogate))(x).grad_fn
        assert (type(node).__name__ == "FusedLIFBackward") == (surrogate in FUSED_SURROGATES), surrogate


def test_a_whole_network_trains_to_the_same_gradients_either_way(monkeypatch):
    from spikenas.network import SpikingNetwork
    from spikenas.neuron import lif as lif_module
    from spikenas.space import CellGenotype, Genotype, MacroConfig

    cell = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("skip", 0, 2), ("conv1x1", 1, 2), ("avgpool", 0, 3), ("conv3x3", 2, 3)])
    macro = MacroConfig(input_shape=(1, 8, 8), num_classes=3, timesteps=3, channels=4, head_pool=2, head_hidden=8, votes=2,
                        dropout=0.0)
    images = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))

    def gradients():
        network = SpikingNetwork(Genotype((cell, cell)), macro, NeuronConfig(learn_tau=True), seed=0)
        network(images).logsumexp(-1).sum().backward()
        return [p.grad for p in network.parameters()]

    fused = gradients()
    monkeypatch.setattr(lif_module, "FUSED_SURROGATES", ())
    norse = gradients()
    for a, b in zip(fused, norse):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
