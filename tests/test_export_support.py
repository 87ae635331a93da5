"""A search limited to a target tries every part at the shapes its macros give it, so every
network it may return exports for that target (spikenas/export/support.py)."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from spikenas import Genotype, SpikenasError
from spikenas.app.cli import main
from spikenas.export import ExportError, TARGETS, network_to_nir
from spikenas.export.support import restrict_space
from spikenas.export.targets import LAYERS, conv_output_shape
from spikenas.network import SpikingNetwork
from spikenas.neuron import NeuronConfig
from spikenas.plugin import get_registries, hookimpl
from spikenas.plugin.testing import temporary_plugin
from spikenas.space import CellSpace, MacroConfig
from spikenas.space.config import DEFAULT_OPERATIONS, SearchSpaceConfig, macro_options

from test_export import SEARCH_CONFIG


def test_a_search_for_a_target_leaves_out_an_operation_that_fails_at_a_cells_real_shape(tmp_path, capsys):
    # 8x8 images, 3 cells: maps of 8x8, 4x4 and 2x2, where a 3x3 average pool is not exported
    main(["search", "--config", SEARCH_CONFIG, "--trainer.default_root_dir", str(tmp_path),
          "--trainer.logger.init_args.save_dir", str(tmp_path), "--export_target", "snntorch", "--space.cells", "3"])
    out = capsys.readouterr().out
    assert ("target snntorch cannot run operation 'avgpool' at cell 2's [C, H, W] = [32, 2, 2] "
            "(avgpool_0: a 3x3 average pool on a 2x2 map is not exported): left out") in out
    config = yaml.safe_load(next(tmp_path.rglob("final.yaml")).read_text())
    genotype = Genotype.from_dict(config["model"]["genotype"])
    assert not any(e.op == "avgpool" for cell in genotype.cells for e in cell.edges)
    macro = MacroConfig(**config["model"]["macro"])
    graph = network_to_nir(SpikingNetwork(genotype, macro, NeuronConfig(**config["model"].get("neuron", {}))), target="snntorch")
    assert graph.metadata["target"] == "snntorch"


def _without_pooling(monkeypatch) -> str:
    """A target like ``nir`` that expresses no ``nn.AvgPool2d`` (the reductions' and the head's)."""
    spec = dataclasses.replace(TARGETS["nir"], name="nopool", layers=tuple(t for t in LAYERS if t is not nn.AvgPool2d))
    monkeypatch.setitem(TARGETS, "nopool", spec)
    return spec.name


def test_a_macro_knob_value_whose_head_a_target_cannot_run_is_left_out(monkeypatch):
    target = _without_pooling(monkeypatch)
    macro = MacroConfig(input_shape=(1, 8, 8), num_classes=3, channels=4, head_pool=2, head_hidden=8)
    space, notes = restrict_space(SearchSpaceConfig(cells=1, head_pool=[1, 2]), target, NeuronConfig(),
                                  get_registries().operations, macro)
    assert space.head_pool == [1] and space.operations == list(DEFAULT_OPERATIONS)
    assert notes == ["target nopool cannot run the macro's head_pool [2] (head: layer AvgPool2d has no NIR form "
                     "(target nopool)): left out"]
    with pytest.raises(ExportError, match=r"^target nopool cannot run the network of macro channels=4, head_hidden=8, "
                                          r"head_pool=1 \(reduction0: layer AvgPool2d has no NIR form \(target nopool\)\)$"):
        restrict_space(SearchSpaceConfig(cells=2, head_pool=[1, 2]), target, NeuronConfig(), get_registries().operations, macro)


@pytest.mark.parametrize("padding, stride, dilation, kernel", [(1, 1, 1, 3), (0, 2, 1, 3), (2, 3, 2, 5), ("same", 1, 2, 3),
                                                               ("valid", 1, 1, 4), ((1, 0), (2, 1), 1, 3)])
def test_a_convolutions_output_shape_is_pytorchs_without_running_it(padding, stride, dilation, kernel):
    layer = nn.Conv2d(3, 5, kernel, stride=stride, padding=padding, dilation=dilation)
    for shape in [(3, 7, 9), (3, 12, 5)]:
        assert conv_output_shape(layer, shape) == tuple(layer(torch.zeros(1, *shape)).shape[1:])


@settings(max_examples=25, deadline=None)
@given(size=st.tuples(st.integers(3, 12), st.integers(3, 12)), cells=st.integers(1, 3), stride=st.integers(1, 2),
       head_pool=st.lists(st.integers(1, 3), min_size=1, max_size=2), target=st.sampled_from(sorted(TARGETS)),
       seed=st.integers(0, 2**16))
def test_every_network_of_a_space_limited_to_a_target_exports_for_it(size, cells, stride, head_pool, target, seed):
    base = MacroConfig(input_shape=(1, *size), num_classes=3, timesteps=2, channels=2, stem_stride=stride, head_pool=1,
                       head_hidden=4, votes=1)
    space = SearchSpaceConfig(cells=cells, channels=[2, 3], head_pool=head_pool, backward=True)
    neuron, _ = TARGETS[target].adopt_neuron(NeuronConfig())  # the neurons the search trains for it
    try:
        space, _ = restrict_space(space, target, neuron, get_registries().operations, base)
    except ExportError as exc:
        assert "runs none of the operations" in str(exc)  # every connecting operation fails at a shape
        return
    rng = random.Random(seed)
    cell_space = CellSpace(space.operations, get_registries().operations, space.nodes, space.backward, space.direct_edge)
    for macro in macro_options(base, space):
        try:
            macro.head_features(cells)
        except SpikenasError:
            continue  # too small for its cells: the search never chooses it
        genotype = Genotype(tuple(cell_space.sample(rng) for _ in range(cells)))
        with torch.no_grad():
            network_to_nir(SpikingNetwork(genotype, macro, neuron, seed=0), target=target)


class _Unbuildable:
    @hookimpl
    def spikenas_register_operations(self, registry):
        def build(channels, neuron):
            raise RuntimeError(f"no {channels}-channel version")
        registry.add("unbuildable", build)


def test_an_operation_that_fails_to_build_is_one_line_naming_it_and_its_plugin():
    with temporary_plugin(_Unbuildable(), name="acme"), pytest.raises(
            SpikenasError, match=r"^operation 'unbuildable' \(plugin 'acme'\) failed to build at 4 channels: RuntimeError: "
                                 r"no 4-channel version$"):
        restrict_space(SearchSpaceConfig(operations=["skip", "unbuildable"]), "nir", NeuronConfig(), get_registries().operations,
                       MacroConfig(input_shape=(1, 8, 8), channels=4, head_hidden=8))
