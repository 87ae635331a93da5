"""The memory cost model is exact: its counts equal the built network's, byte for byte."""

from __future__ import annotations

import random

import torch

from spikenas import Genotype
from spikenas.neuron import NeuronConfig, record_spikes
from spikenas.network import SpikingNetwork
from spikenas.space import CellSpace, MacroConfig
from spikenas.network.profile import Profiler

OPS = ["zero", "skip", "conv1x1", "conv3x3", "avgpool"]


def random_genotypes(operations, n: int, seed: int = 0) -> list[Genotype]:
    """Cells with forward and backward edges, with and without the direct edge (so with dead
    nodes too), 1 to 3 cells, every cell drawn independently."""
    rng = random.Random(seed)
    spaces = [CellSpace(OPS, operations, backward=b, direct_edge=d) for b in (False, True) for d in (False, True)]
    return [
        Genotype(tuple(rng.choice(spaces).sample(rng) for _ in range(rng.randint(1, 3))))
        for _ in range(n)
    ]


def built_neurons(net: torch.nn.Module, macro: MacroConfig) -> int:
    """LIF neurons per sample that actually run in a real forward pass."""
    per_step = []  # sequence-mode calls record [T, B, ...], step-mode calls [1, B, ...] T times
    with record_spikes(net, lambda s: per_step.append(s.shape[0] * s[0, 0].numel())):
        net(torch.zeros(1, *macro.input_shape))
    assert sum(per_step) % macro.timesteps == 0
    return sum(per_step) // macro.timesteps


def test_param_bytes_exact_over_random_genotypes(operations, registries, tiny_macro, neuron):
    genotypes = random_genotypes(operations, 500)
    assert any(e.backward for g in genotypes for c in g.cells for e in c.edges)
    assert {len(g.cells) for g in genotypes} == {1, 2, 3}
    profiler = Profiler(tiny_macro, neuron, operations)
    models = {bits: registries.cost_models.create("memory", weight_bits=bits) for bits in (32, 8)}
    for g in genotypes:
        with torch.device("meta"):  # shapes only: exact counts, no storage, no init cost
            net = SpikingNetwork(g, tiny_macro, neuron, operations)
        profile = profiler.profile(g)
        numel = sum(p.numel() for p in net.parameters())
        assert profile.params == numel, g
        for bits, model in models.items():
            report = model(profile)
            assert report.param_bytes - numel * bits // 8 == 0, (g, bits)
            assert report.total_bytes == report.param_bytes  # state not counted by default


def test_neuron_counts_match_a_real_forward(operations, tiny_macro, neuron):
    profiler = Profiler(tiny_macro, neuron, operations)
    for g in random_genotypes(operations, 60, seed=1):
        net = SpikingNetwork(g, tiny_macro, neuron, operations).eval()
        assert profiler.profile(g).neurons == built_neurons(net, tiny_macro), g


def test_neuron_count_by_hand(operations, tiny_macro, neuron, snasnet_cell):
    # cell at 4x8x8: conv3x3 (0>1, 2>3) and conv1x1 (1>2) each have one LIF of 256 neurons;
    # head: BN->LIF on 4x8x8 (256) and the hidden FC's LIF (8)
    profile = Profiler(tiny_macro, neuron, operations).profile(Genotype((snasnet_cell,)))
    assert profile.neurons == 3 * 256 + 256 + 8
    assert [layer.name for layer in profile.layers] == [
        "stem", "cell0.0>1:conv3x3", "cell0.0>2:skip", "cell0.1>2:conv1x1", "cell0.0>3:avgpool",
        "cell0.2>3:conv3x3", "head",
    ]


def test_per_layer_rows_match_modules(operations, tiny_macro, neuron, genotype):
    net = SpikingNetwork(genotype, tiny_macro, neuron, operations)
    profile = Profiler(tiny_macro, neuron, operations).profile(genotype)
    rows = {layer.name: layer.params for layer in profile.layers}
    assert rows["stem"] == sum(p.numel() for p in net.stem.parameters())
    assert rows["reduction0"] == sum(p.numel() for p in net.reductions[0].parameters())
    assert rows["head"] == sum(p.numel() for p in net.head.parameters())
    assert rows["cell1.3>1:conv1x1"] == sum(p.numel() for p in net.cells[1].ops["3_1_conv1x1"].parameters())
    assert sum(rows.values()) == profile.params


def test_snasnet_profile_without_building(operations, neuron, snasnet_cell):
    profiler = Profiler(MacroConfig.snasnet_cifar10_263e6bc(), neuron, operations)
    profile = profiler.profile(Genotype((snasnet_cell, snasnet_cell)))
    assert profile.params == 6_155_492  # see test_network.py
    assert profiler.cell_counts(snasnet_cell, 0)[0] + profiler.fixed_counts(2)[0] < profile.params


def test_learnt_time_constants_are_counted(operations, tiny_macro, genotype):
    """PLIF adds one parameter per LIF layer; the memory model counts them like any weight."""
    fixed, learnt = NeuronConfig(), NeuronConfig(learn_tau=True)
    net = SpikingNetwork(genotype, tiny_macro, learnt, operations)
    lif_layers = sum(1 for name, _ in net.named_parameters() if name.endswith("tau_logit"))
    assert lif_layers > 0
    learnt_params = Profiler(tiny_macro, learnt, operations).profile(genotype).params
    assert learnt_params - Profiler(tiny_macro, fixed, operations).profile(genotype).params == lif_layers
    assert learnt_params == sum(p.numel() for p in net.parameters())
