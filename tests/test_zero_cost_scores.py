"""The whole-network zero-cost proxies (SynFlow, NASWOT at the head) against their definitions,
and the search with a score that only ranks whole networks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from spikenas.base.errors import SpikenasError
from spikenas.network import SpikingNetwork
from spikenas.neuron import LIF
from spikenas.score import measure_network
from spikenas.score.naswot import NaswotHead
from spikenas.score.synflow import SynFlow
from spikenas.space import Genotype


def test_synflow_of_a_linear_chain_is_its_closed_form_and_leaves_the_weights_alone():
    """For ``f(x) = W2 W1 x`` (no spikes, no bias), ``R = 1ᵀ|W2||W1|1`` and each layer's
    ``Σ|θ ∂R/∂θ|`` is ``R``: the score is ``log 2R``."""
    torch.manual_seed(0)
    chain = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=False))
    before = [p.detach().clone() for p in chain.parameters()]
    score = SynFlow().measure(chain, [torch.randn(5, 1, 2, 2)])
    w1, w2 = (p.double().abs() for p in before)
    flow = (torch.ones(1, 2, dtype=torch.float64) @ w2 @ w1 @ torch.ones(4, 1, dtype=torch.float64)).item()
    assert score == pytest.approx(math.log(2 * flow), rel=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(before, chain.parameters()))
    assert all(p.grad is None for p in chain.parameters())


def test_synflow_flows_through_the_spikes_surrogate_and_ranks_more_synapses_higher(tiny_macro, neuron, snasnet_cell):
    images = torch.randn(4, *tiny_macro.input_shape, generator=torch.Generator().manual_seed(0))
    sparse = Genotype((type(snasnet_cell).from_ops(4, [("conv1x1", 0, 1), ("zero", 0, 2), ("conv1x1", 1, 2),
                                                     ("zero", 0, 3), ("zero", 1, 3), ("conv1x1", 2, 3)]),))
    dense = Genotype((type(snasnet_cell).from_ops(4, [("conv3x3", 0, 1), ("conv3x3", 0, 2), ("conv3x3", 1, 2),
                                                    ("conv3x3", 0, 3), ("conv3x3", 1, 3), ("conv3x3", 2, 3)]),))
    scores = [measure_network(SpikingNetwork(g, tiny_macro, neuron, seed=0), [images], SynFlow()) for g in (sparse, dense)]
    assert all(math.isfinite(s) for s in scores)
    assert scores[1] > scores[0]
    again = measure_network(SpikingNetwork(dense, tiny_macro, neuron, seed=0), [images], SynFlow())
    assert again == scores[1]  # data-free and deterministic


def test_naswot_head_is_the_plain_kernel_of_the_heads_spikes(tiny_macro, neuron, snasnet_cell):
    network = SpikingNetwork(Genotype((snasnet_cell, snasnet_cell)), tiny_macro, neuron, seed=0)
    images = torch.randn(6, *tiny_macro.input_shape, generator=torch.Generator().manual_seed(1))
    captured = []
    hook = network.head.features[1].register_forward_hook(lambda m, i, out: captured.append(out.detach()))
    score = measure_network(network, [images], NaswotHead())
    hook.remove()
    assert isinstance(network.head.features[1], LIF)
    codes = captured[-1].transpose(0, 1).flatten(1).double()  # [B, T·N], the sample's binary code
    agree = torch.tensor([[float((codes[i] == codes[j]).sum()) for j in range(6)] for i in range(6)], dtype=torch.float64)
    assert score == pytest.approx(torch.linalg.slogdet(agree).logabsdet.item(), rel=1e-12)


def test_naswot_head_names_a_network_without_a_spiking_head():
    with pytest.raises(SpikenasError, match="naswot_head.*Sequential"):
        NaswotHead().measure(nn.Sequential(nn.Flatten()), [torch.zeros(2, 1, 2, 2)])
