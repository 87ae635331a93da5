"""The hardware view of a network: kinds, shapes, kernels, fan-in, fan-out and neurons per layer."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import nn

from spikenas import CellGenotype, Genotype, get_registries, hookimpl
from spikenas.cost import MemoryReport, NetworkProfile
from spikenas.cost.hardware import hardware_layers
from spikenas.network import SpikingNetwork
from spikenas.space.config import SearchSpaceConfig
from spikenas.search.cell_search import build_context, search
from spikenas.search.consecutive import SpikeNASSearch
from spikenas.space import MacroConfig
from spikenas.network.profile import Profiler
from spikenas.cost.synops import profile_layer
from spikenas.plugin.testing import temporary_plugin

MACRO = MacroConfig(input_shape=(1, 12, 12), num_classes=3, timesteps=2, channels=4, head_pool=2, head_hidden=8, votes=2)


def test_each_layer_has_the_shapes_kernel_fan_in_and_fan_out_hardware_maps(dwsep, backward_cell, neuron):
    dw = CellGenotype.from_ops(4, [("dwsep3x3", 0, 1), ("skip", 1, 2), ("skip", 0, 3), ("skip", 2, 3)])
    genotype = Genotype((backward_cell, dw))
    network = SpikingNetwork(genotype, MACRO, neuron)
    rows = {layer.name: layer for layer in hardware_layers(network, MACRO.input_shape)}
    stem = rows["stem.0"]
    assert (stem.kind, stem.input_shape, stem.output_shape, stem.kernel, stem.fan_in, stem.fan_out) == ("conv", (1, 12, 12), (4, 12, 12), (3, 3), 9, 36)
    lif = rows["cells.0.ops.3_1_conv1x1.0"]  # a backward edge's neurons, run step by step
    assert (lif.kind, lif.input_shape, lif.neurons, lif.fan_out) == ("lif", (4, 12, 12), 4 * 144, 4)
    reduction = rows["reductions.0.2"]
    assert (reduction.input_shape, reduction.output_shape, reduction.fan_in, reduction.fan_out) == ((4, 12, 12), (8, 12, 12), 36, 72)
    depthwise = rows["cells.1.ops.0_1_dwsep3x3.1"]
    assert (depthwise.kind, depthwise.input_shape, depthwise.fan_in, depthwise.fan_out) == ("depthwise conv", (8, 6, 6), 9, 9)
    assert rows["head.features.1"].fan_out == 8 and rows["head.classifier.0"].input_shape == (8 * 3 * 3,)
    assert rows["head.classifier.2"].output_shape == (6,) and rows["head.classifier.2"].fan_in == 8
    # the totals agree with the network and with the memory profile
    layers = list(rows.values())
    weighted = [m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert sum(layer.weights for layer in layers) == sum(m.weight.numel() for m in weighted)
    assert sum(layer.neurons for layer in layers) == Profiler(MACRO, neuron, get_registries().operations).profile(genotype).neurons
    assert all(p.device.type == "cpu" for p in network.parameters())  # the network itself is untouched


def test_a_meta_network_is_described_without_memory(snasnet_cell, neuron):
    with torch.device("meta"):
        network = SpikingNetwork(Genotype((snasnet_cell,) * 2), MacroConfig.snasnet_cifar10(), neuron)
    layers = hardware_layers(network, (3, 32, 32))
    assert layers[0].name == "stem.0" and layers[-1].output_shape == (100,)


def test_the_profile_gives_cost_models_each_parts_hardware_layers(dwsep, backward_cell, neuron):
    """What a cost model plugin receives per part equals the built network's hardware view."""
    dw = CellGenotype.from_ops(4, [("dwsep3x3", 0, 1), ("skip", 1, 2), ("skip", 0, 3), ("skip", 2, 3)])
    genotype = Genotype((backward_cell, dw))
    network = SpikingNetwork(genotype, MACRO, neuron)
    by_part: dict[str, list] = {}
    for layer in hardware_layers(network, MACRO.input_shape):
        by_part.setdefault(profile_layer(layer.name), []).append(replace(layer, name=""))
    profile = Profiler(MACRO, neuron, get_registries().operations).profile(genotype)
    given = {part.name: [replace(layer, name="") for layer in part.hardware] for part in profile.layers if part.hardware}
    assert given == by_part
    assert [layer.name for layer in profile.layers[0].hardware] == ["0"]  # names are paths inside the part
    for part in profile.layers:
        assert part.neurons == sum(layer.neurons for layer in part.hardware)


class _CoreCount:
    """A neuromorphic-core cost model: 1 KiB per core of at most 256 neurons, per LIF layer."""

    name = "cores"

    def __call__(self, profile: NetworkProfile) -> MemoryReport:
        cores = sum(math.ceil(layer.neurons / 256) for part in profile.layers for layer in part.hardware if layer.kind == "lif")
        report = MemoryReport.at_precision(self.name, profile, 32, 32, False)
        return replace(report, total_bytes=1024 * cores)


class _CorePlugin:
    @hookimpl
    def spikenas_register_cost_models(self, registry):
        registry.add("cores", _CoreCount)


def test_a_plugin_cost_model_budgets_on_the_hardware_layers(snasnet_cell, neuron):
    images = torch.randn(8, *MACRO.input_shape, generator=torch.Generator().manual_seed(0))
    with temporary_plugin(_CorePlugin(), name="cores"):
        ctx = build_context(MACRO, neuron, SearchSpaceConfig(cells=2), [images], budget={"cores": 12 * 1024}, cost_model="cores")
        result = search(ctx, SpikeNASSearch())
    network = SpikingNetwork(result.genotype, ctx.macro, neuron)
    lifs = [layer for layer in hardware_layers(network, MACRO.input_shape) if layer.kind == "lif"]
    assert result.bytes == 1024 * sum(math.ceil(layer.neurons / 256) for layer in lifs) <= 12 * 1024
