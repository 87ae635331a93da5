"""Cost models: the built-in memory model at any precision, its options, and byte units."""

from __future__ import annotations

import pytest

from spikenas import SpikenasError
from spikenas.cost import NetworkProfile, bits_to_bytes
from spikenas.cost.memory import ParameterMemory
from spikenas.network.profile import Profiler
from spikenas.base.units import format_bytes, parse_bytes


@pytest.mark.parametrize("weight_bits, state_bits", [(32, 32), (8, 16), (4, 3)])
def test_memory_model_state(weight_bits, state_bits, registries, operations, tiny_macro, neuron, genotype):
    profile = Profiler(tiny_macro, neuron, operations).profile(genotype)
    model = registries.cost_models.create("memory", weight_bits=weight_bits, state_bits=state_bits, count_state=True)
    report = model(profile)
    assert report.param_bytes == bits_to_bytes(profile.params, weight_bits)
    assert report.state_bytes == bits_to_bytes(profile.neurons, state_bits)
    assert report.total_bytes == report.param_bytes + report.state_bytes
    assert len(report.layers) == len(profile.layers)
    table = report.format()
    assert "head" in table and f"{report.total_bytes:,}" in table


def test_cost_model_option_errors(registries):
    for options, culprit in [({"weight_bits": 0}, "weight_bits"), ({"bits": 8}, "bits")]:
        with pytest.raises(SpikenasError) as info:
            registries.cost_models.create("memory", **options)
        assert "\n" not in str(info.value) and culprit in str(info.value) and "'memory'" in str(info.value)
    with pytest.raises(SpikenasError, match="unknown cost_model 'flash'; known: memory"):
        registries.cost_models.create("flash")


def test_byte_units():
    assert parse_bytes("256KiB") == 262144 and parse_bytes("500KB") == 500000 and parse_bytes(1234) == 1234
    assert parse_bytes(None) is None
    with pytest.raises(SpikenasError, match="'12 parsecs'"):
        parse_bytes("12 parsecs")
    assert format_bytes(1536) == "1.50 KiB"
    assert NetworkProfile(()).params == 0


@pytest.mark.parametrize("bits", [1, 20, 64, True, 8.0])
def test_a_weight_precision_fit_cannot_train_is_refused_by_the_search_too(bits):
    """Search and fit agree: a final.yaml the search writes always trains (2..16 bits or float)."""
    with pytest.raises(SpikenasError, match="weight_bits must be 2..16 .* or 32"):
        ParameterMemory(weight_bits=bits)


def test_the_memory_table_keeps_wide_values_apart():
    from spikenas.cost import LayerCost, MemoryReport

    report = MemoryReport("memory", 1_536_016_439, 1_536_016_439, 4_394_124_408,
                          (LayerCost("cell0.0>1:conv3x3", 384_004_109, 1_098_531_102, 1_536_016_439, 4_394_124_408),))
    rows = report.format().splitlines()
    assert rows[1].split() == ["cell0.0>1:conv3x3", "384,004,109", "1,098,531,102", "1,536,016,439", "4,394,124,408"]
    assert len({len(row) for row in rows[:3]}) == 1  # aligned columns
