"""The spiking network: shapes, gradients, causality of backward edges, seeding, sizes."""

from __future__ import annotations

import pytest
import torch

from spikenas import CellGenotype, Genotype, SpikenasError
from spikenas.neuron import NeuronConfig, record_spikes
from spikenas.network import CellModule, SpikingNetwork
from spikenas.space import MacroConfig


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("cells", [1, 2, 3])
def test_forward_backward_shapes(cells, snasnet_cell, backward_cell, tiny_macro):
    genotype = Genotype(tuple([snasnet_cell, backward_cell, snasnet_cell][:cells]))
    net = SpikingNetwork(genotype, tiny_macro.replace(dropout=0.3), seed=0)
    images = torch.randn(4, 1, 8, 8)
    logits = net(images)
    assert logits.shape == (4, 3)
    assert net.timestep_logits(images).shape == (3, 4, 3)
    c, h, w = tiny_macro.cell_shape(cells - 1)
    assert net.features(images).shape == (3, 4, c, h, w)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    assert net.stem[0].weight.grad.abs().sum() > 0  # the surrogate gradient reaches the stem


def test_network_fires(genotype, tiny_macro):
    net = SpikingNetwork(genotype, tiny_macro, seed=0)
    rates = []
    with record_spikes(net, lambda s: rates.append(s.mean().item())):
        net(torch.randn(8, 1, 8, 8))
    assert len(rates) >= 5 and max(rates) > 0


def _skip_loop_cell() -> CellGenotype:
    # n1[t] = x[t] + n3[t-1];  n2 = n1;  n3 = n2   =>  out[t] = x[0] + ... + x[t]
    return CellGenotype.from_ops(4, [("skip", 0, 1), ("zero", 0, 2), ("skip", 1, 2),
                                     ("zero", 0, 3), ("skip", 3, 1), ("skip", 2, 3)])


def test_backward_edge_delivers_previous_timestep(operations, neuron):
    cell = CellModule(_skip_loop_cell(), 2, neuron, operations)
    assert cell.recurrent
    x = torch.randn(5, 3, 2, 4, 4)
    assert torch.allclose(cell(x), x.cumsum(0), atol=1e-6)


def test_backward_edge_hand_computation_with_conv(operations, neuron):
    # n1[t] = x[t] + conv(n3)[t-1] (nothing at t = 0);  n2 = n1;  n3 = n2  (a spiking recurrent layer)
    g = CellGenotype.from_ops(4, [("skip", 0, 1), ("conv1x1", 3, 1), ("skip", 1, 2), ("skip", 2, 3)])
    cell = CellModule(g, 3, neuron, operations, seed=0).eval()
    op = cell.ops["3_1_conv1x1"]
    torch.nn.init.uniform_(op[2].bias, 0.5, 1.0)  # conv of nothing is then BN's shift, not zero:
    assert op.step(torch.zeros(2, 3, 5, 5), None)[0].abs().sum() > 0  # t = 0 must not see it
    x = torch.randn(4, 2, 3, 5, 5) * 2
    expected, carried, state = [], 0.0, None
    for frame in x:
        n3 = frame + carried
        expected.append(n3)
        carried, state = op.step(n3, state)
    assert torch.allclose(cell(x), torch.stack(expected), atol=1e-6)


def test_backward_edge_into_the_input_node_follows_snasnet(operations, neuron):
    # SNASNet's Neuronal_Cell_backward: every forward edge from node 0 reads x_in + last_xin, and
    # last_xin, zero at t = 0, is set after each step from that step's node values (here
    # conv1x1 of node 2): n0'[t] = x[t] + conv1x1(n2)[t-1];  n1 = conv3x3(n0');  n2 = n1;  n3 = n0' + n2
    g = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("conv1x1", 2, 0), ("skip", 1, 2),
                                  ("skip", 0, 3), ("skip", 2, 3)])
    cell = CellModule(g, 3, neuron, operations, seed=0).eval()
    back, conv = cell.ops["2_0_conv1x1"], cell.ops["0_1_conv3x3"]
    torch.nn.init.uniform_(back[2].bias, 0.5, 1.0)
    x = torch.randn(4, 2, 3, 5, 5) * 2
    expected, last_xin, back_state, conv_state = [], 0.0, None, None
    for frame in x:
        n0 = frame + last_xin
        n2, conv_state = conv.step(n0, conv_state)
        expected.append(n0 + n2)
        last_xin, back_state = back.step(n2, back_state)
    assert torch.allclose(cell(x), torch.stack(expected), atol=1e-5)
    net = SpikingNetwork(Genotype((g,)), MacroConfig(input_shape=(1, 8, 8), num_classes=3, timesteps=3, channels=4,
                                                     head_pool=2, head_hidden=8, votes=2), seed=0)
    net(torch.randn(2, 1, 8, 8)).sum().backward()
    assert net.cells[0].ops["2_0_conv1x1"][1].weight.grad.abs().sum() > 0  # the feedback edge learns


@pytest.mark.parametrize("which", ["forward", "backward"])
def test_cells_are_causal(which, snasnet_cell, backward_cell, operations, neuron):
    g = snasnet_cell if which == "forward" else backward_cell
    cell = CellModule(g, 4, neuron, operations, seed=0).eval()  # eval: BN uses running stats
    assert cell.recurrent == (which == "backward")
    x = torch.randn(5, 2, 4, 6, 6) * 2
    y = cell(x)
    x2 = x.clone()
    x2[3:] = torch.randn_like(x2[3:]) * 2
    y2 = cell(x2)
    assert torch.equal(y[:3], y2[:3])  # output at t depends on inputs up to t only
    assert not torch.equal(y[3:], y2[3:])


def test_seeded_build_is_reproducible(genotype, tiny_macro, snasnet_cell):
    a = SpikingNetwork(genotype, tiny_macro, seed=3).state_dict()
    b = SpikingNetwork(genotype, tiny_macro, seed=3).state_dict()
    c = SpikingNetwork(genotype, tiny_macro, seed=4).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point() and a[k].numel() > 4)
    # the global RNG is not consumed by a seeded build
    torch.manual_seed(0)
    SpikingNetwork(genotype, tiny_macro, seed=3)
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))
    # the same edge gets the same weights in another genotype (per-part seeds)
    other = Genotype((snasnet_cell, snasnet_cell))
    d = SpikingNetwork(other, tiny_macro, seed=3).state_dict()
    key = "cells.0.ops.0_1_conv3x3.1.weight"
    assert torch.equal(a[key], d[key])


def test_seeded_forward_is_reproducible(genotype, tiny_macro):
    images = torch.randn(2, 1, 8, 8)
    outs = [SpikingNetwork(genotype, tiny_macro, seed=9).eval()(images) for _ in range(2)]
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("macro, count, head_share", [(MacroConfig.snasnet_cifar10_263e6bc(), 6_155_492, 0.68),
                                                      (MacroConfig.snasnet_cifar10(), 15_911_268, 0.53)])
def test_snasnet_cifar10_parameter_count(snasnet_cell, macro, count, head_share):
    net = SpikingNetwork(Genotype((snasnet_cell, snasnet_cell)), macro)
    C = macro.channels  # 128 at 263e6bc, 256 at HEAD

    def cell(c):  # two conv3x3 edges, one conv1x1 edge, skip/avgpool/zero have no parameters
        return 2 * (9 * c * c + 2 * c) + (c * c + 2 * c)

    stem = 3 * 9 * C + 2 * C
    reduction = 2 * C + 9 * C * 2 * C + 2 * 2 * C
    features = 2 * C * 4 * 4  # 2C channels at 16x16, pooled by 4 (second_avgpooling)
    head = 2 * 2 * C + features * 1024 + (1024 * 100 + 100)
    expected = stem + cell(C) + reduction + cell(2 * C) + head
    assert n_params(net) == expected == count
    assert n_params(net.head) / expected > head_share  # the classifier dominates the footprint


def test_too_small_input_names_the_knob(snasnet_cell):
    macro = MacroConfig(input_shape=(1, 4, 4), channels=4, head_pool=4)
    with pytest.raises(SpikenasError, match="head_pool 4"):
        SpikingNetwork(Genotype((snasnet_cell, snasnet_cell)), macro)


def test_invalid_genotype_is_rejected(tiny_macro):
    g = Genotype((CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("zero", 0, 3)]),))
    with pytest.raises(SpikenasError, match="no forward path"):
        SpikingNetwork(g, tiny_macro)


def test_soft_reset_network_runs(genotype, tiny_macro):
    net = SpikingNetwork(genotype, tiny_macro, neuron=NeuronConfig(reset="soft", surrogate="triangle"), seed=0)
    net(torch.randn(2, 1, 8, 8)).sum().backward()
