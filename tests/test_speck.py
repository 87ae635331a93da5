"""The ``speck`` cost model: DYNAP-CNN/Speck core memories computed by hand for a few layers, the
placement of layers on the 9 cores, and searches that return only networks the chip holds."""

from __future__ import annotations

import pytest
import torch
import yaml

from spikenas import CellGenotype, Genotype, SpikenasError, get_registries
from spikenas.app.cli import main
from spikenas.cost import HardwareLayer
from spikenas.cost.speck import CORES, KI, LayerNeed, layer_need, place
from spikenas.network.profile import Profiler
from spikenas.search.consecutive import SpikeNASSearch
from spikenas.search.context import BudgetError
from spikenas.search.driver import build_context, search
from spikenas.space import MacroConfig
from spikenas.space.config import SearchSpaceConfig
from spikenas.train.classifier import SNNClassifier
from spikenas.train.quantize import QuantizationConfig

from test_export import SEARCH_CONFIG


def conv(c: int, f: int, k: int, size_in: int, size_out: int) -> HardwareLayer:
    return HardwareLayer("conv", "conv", (c, size_in, size_in), (f, size_out, size_out), (k, k), c * k * k, f * k * k, 0,
                         f * c * k * k)


def linear(n_in: int, n_out: int) -> HardwareLayer:
    return HardwareLayer("fc", "linear", (n_in,), (n_out,), None, n_in, n_out, 0, n_in * n_out)


@pytest.mark.parametrize("layer, image, kernel, neurons", [
    # sinabs's own example (docs/speck/overview.md): 16 -> 32 channels, 3x3, 64x64 maps;
    # kernel 16 * 2**(ceil(log2 9) + log2 32) = 16 * 2**9, neurons 32 * 2**(6 + 6)
    (conv(16, 32, 3, 64, 64), None, 8 * KI, 128 * KI),
    (conv(24, 24, 1, 14, 14), None, 24 * 2**5, 24 * 2**(4 + 4)),   # 32 output channels' worth, 16x16 map's
    (conv(3, 5, 5, 28, 14), None, 3 * 2**(5 + 3), 5 * 2**(4 + 4)),  # a stride-2 5x5: 25 -> 32, 5 -> 8
    (conv(1, 8, 3, 12, 12), None, 1 * 2**(4 + 3), 8 * 2**(4 + 4)),
    # a linear layer after flattening (32, 7, 7) into 64 outputs: a 7x7 kernel over 32 channels
    (linear(32 * 7 * 7, 64), (32, 7, 7), 32 * 2**(6 + 6), 64),
    (linear(64, 100), None, 64 * 2**7, 100),                          # on a flat input: 1x1
])
def test_each_layers_kernel_and_neuron_entries_are_sinabss_by_hand(layer, image, kernel, neurons):
    need = layer_need("x", layer, image)
    assert (need.kernel, need.neurons, need.biases) == (kernel, neurons, layer.output_shape[0])


def test_a_layer_over_a_per_layer_limit_says_which():
    assert layer_need("x", conv(16, 32, 3, 64, 64)).over == (
        "8,192 kernel and 131,072 neuron entries, which no core holds (the largest hold 65,536 kernel or 65,536 "
        "neuron entries)")
    assert layer_need("x", conv(16, 2048, 1, 8, 8)).over == "2,048 channels, more than 1,024"
    assert layer_need("x", conv(2, 2, 17, 20, 4)).over == "a 17x17 kernel, larger than 16x16"
    assert layer_need("x", conv(2, 2, 3, 130, 65)).over == "a 130x130 input map, larger than 128x128"
    assert layer_need("x", conv(2, 2, 3, 100, 100)).over == "a 100x100 output map, larger than 64x64"
    assert layer_need("x", conv(16, 16, 3, 64, 64)).over is None  # 16 * 2**(6+6) = 64 Ki neurons: cores 0-2


def _needs(kernel: int, neurons: int, count: int) -> list[LayerNeed]:
    return [LayerNeed(f"l{i}", kernel, neurons, 8) for i in range(count)]


def test_layers_get_a_core_each_or_no_placement():
    big_kernels = _needs(40 * KI, 1 * KI, 2)  # only cores 5 and 6 hold 40 Ki kernel entries
    assert sorted(place(big_kernels)) == [5, 6]
    assert place(_needs(40 * KI, 1 * KI, 3)) is None
    # 3 layers of 48 Ki neurons (cores 0-2) and 2 of 60 Ki kernel entries (cores 5-6), then 4 small ones
    mixed = _needs(1 * KI, 48 * KI, 3) + _needs(60 * KI, 1 * KI, 2) + _needs(1 * KI, 1 * KI, 4)
    placement = place(mixed)
    assert sorted(placement) == list(range(9)) and all(CORES[c].holds(n) for n, c in zip(mixed, placement))
    assert place(_needs(1, 1, 10)) is None  # more layers than cores


MACRO = MacroConfig(input_shape=(1, 12, 12), num_classes=3, timesteps=2, channels=4, head_pool=2, head_hidden=8, votes=2)
ALL_CONV = CellGenotype.from_ops(4, [("conv3x3", i, j) for i, j in [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]])
SKIP = CellGenotype.from_ops(4, [("skip", 0, 3)])


def test_a_networks_report_sums_its_layers_and_places_them(neuron):
    profile = Profiler(MACRO, neuron, get_registries().operations).profile(Genotype((SKIP, SKIP)))
    report = get_registries().cost_models.create("speck")(profile)
    # stem 1 -> 4, 3x3 at 12x12; reduction 4 -> 8, 3x3 at 12x12; head: (8, 6, 6) pooled by 2 into
    # 8 hidden, then 8 -> 6 (3 classes x 2 votes)
    kernels = [1 * 2**(4 + 2), 4 * 2**(4 + 3), 8 * 2**(4 + 3), 8 * 2**(0 + 3)]
    neurons = [4 * 2**(4 + 4), 8 * 2**(4 + 4), 8, 6]
    assert [(n.kernel, n.neurons) for n, _ in report.cores] == list(zip(kernels, neurons))
    assert report.refusal is None and len({core for _, core in report.cores}) == 4
    assert (report.param_bytes, report.state_bytes) == (sum(kernels), 2 * sum(neurons))
    assert report.total_bytes == sum(kernels) + 2 * sum(neurons)
    assert "core" in report.format() and "stem.0" in report.format()
    crowded = get_registries().cost_models.create("speck")(
        Profiler(MACRO, neuron, get_registries().operations).profile(Genotype((ALL_CONV, ALL_CONV))))
    assert crowded.refusal == "16 layers, more than the chip's 9 cores"  # 1 + 6 + 1 + 6 + 2


def test_a_search_on_speck_returns_only_networks_whose_every_layer_has_a_core(neuron):
    images = torch.randn(8, *MACRO.input_shape, generator=torch.Generator().manual_seed(0))
    ctx = build_context(MACRO, neuron, SearchSpaceConfig(cells=2, operations=["zero", "skip", "conv3x3"]), [images],
                        cost_model="speck")
    assert ctx.memory.refusal_of(Genotype((ALL_CONV, ALL_CONV))) is not None  # the space holds networks the chip does not
    result = search(ctx, SpikeNASSearch())
    assert result.report.refusal is None and len(result.report.cores) <= 9
    assert all(core is not None and CORES[core].holds(need) for need, core in result.report.cores)


def test_a_space_whose_cheapest_network_the_chip_refuses_is_one_line(neuron):
    images = torch.randn(8, *MACRO.input_shape, generator=torch.Generator().manual_seed(0))
    with pytest.raises(BudgetError, match=r"^cost model 'speck' runs no network of the space: the cheapest network at macro "
                                          r"channels=4, head_hidden=2048, head_pool=2 does not run \(layer "
                                          r"head.classifier.0 needs 2,048 channels, more than 1,024\); narrow the space$"):
        build_context(MACRO.replace(head_hidden=2048), neuron, SearchSpaceConfig(cells=2), [images], cost_model="speck")
    with pytest.raises(SpikenasError, match=r"cost_model 'speck' \(plugin 'spikenas.cost.speck'\) rejected options"):
        get_registries().cost_models.create("speck", cores=12)


def test_fit_refuses_a_network_the_chip_does_not_run():
    model = SNNClassifier(Genotype((ALL_CONV, ALL_CONV)).to_dict(), MACRO, cost_model="speck",
                          quantization=QuantizationConfig(weight_bits=8))
    with pytest.raises(SpikenasError, match=r"^the network does not run on the hardware of cost model 'speck': 16 layers, "
                                            r"more than the chip's 9 cores; search again with that cost model$"):
        model.check_deployable()
    SNNClassifier(Genotype((SKIP, SKIP)).to_dict(), MACRO, cost_model="speck",
                  quantization=QuantizationConfig(weight_bits=8)).check_deployable()


def test_profile_says_when_the_chip_does_not_run_a_network(tmp_path, capsys):
    extra = tmp_path / "chip.yaml"
    extra.write_text(yaml.safe_dump({"model": {"genotype": Genotype((ALL_CONV, ALL_CONV)).to_dict(), "cost_model": "speck",
                                               "budget": 1_000_000}}))
    main(["profile", "--config", SEARCH_CONFIG, "--config", str(extra)])
    out = capsys.readouterr().out
    assert "does not run on the hardware of cost model 'speck': 16 layers, more than the chip's 9 cores" in out
    assert "the network fits, but does not run on the hardware of cost model 'speck' (above)" in out
