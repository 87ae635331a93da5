"""Lowering to each toolchain's conventions: only the nodes it reads, exact pooling and folding,
the LIF parameters it needs, the node order its executor runs, files every nir from 1.0.4 opens.
The toolchains themselves run the files in tests/consumers (the consumer matrix)."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
from collections import defaultdict
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch
import yaml
from torch import nn

from spikenas import CellGenotype, Genotype
from spikenas.app.cli import main
from spikenas.export import ExportError, TARGETS, load_nir, network_to_nir, run_nir
from spikenas.export.from_network import NIRBuilder
from spikenas.export.graph import NIR_HAS_V_RESET, Graph, write
from spikenas.export.support import restrict_space
from spikenas.neuron import LIF, NeuronConfig
from spikenas.ops import SpikingSequential
from spikenas.ops.builtin import AvgPool3x3
from spikenas.plugin import get_registries, hookimpl
from spikenas.space import MacroConfig
from spikenas.space.config import SearchSpaceConfig
from spikenas.plugin.testing import temporary_plugin

from test_export import DELAY_ONLY, FORWARD, INTO_INPUT, RECURRENT_ONLY, SEARCH_CONFIG, _final_and_checkpoint, images, trained_like

CONSUMERS = ("snntorch", "norse", "sinabs")
READ = {nir.Input, nir.Output, nir.Affine, nir.Conv2d, nir.Flatten, nir.LIF, nir.SumPool2d}  # read by all three


def neuron_for(target: str) -> NeuronConfig | None:
    """The neurons ``target`` runs, at :func:`trained_like`'s threshold (None: trained_like's own ``lif``)."""
    model = TARGETS[target].neurons[0]
    return None if model == "lif" else NeuronConfig(model=model, threshold=0.5, reset="soft", surrogate="exp")
# node 3 sums two convolutions (batch norm folds into them); node 1, which a skip brings to
# node 3, is read by another edge too (it cannot)
FOLDABLE = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("conv1x1", 0, 3), ("conv3x3", 1, 3)])
SKIP_INTO_OUTPUT = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("skip", 1, 3), ("conv1x1", 1, 2), ("conv1x1", 2, 3),
                                             ("conv1x1", 0, 3)])
# node 1 reaches the source of 4 -> 1 only through the other backward edge, 1 -> 0, and leads
# to the output only through it: the order must still run node 1 before that source
THROUGH_FEEDBACK = CellGenotype.from_ops(5, [("conv3x3", 0, 2), ("conv1x1", 0, 4), ("avgpool", 4, 1), ("conv3x3", 1, 0),
                                             ("skip", 2, 4), ("conv1x1", 3, 2), ("skip", 0, 3)])
# backward edges: a cycle into the input node, a delay on no cycle, the only input of a node,
# a cycle closed through another
RECURRENT = {"into-input": (INTO_INPUT, FORWARD), "delay-without-cycle": (DELAY_ONLY, INTO_INPUT),
             "recurrent-only": (RECURRENT_ONLY,), "through-feedback": (THROUGH_FEEDBACK, FORWARD)}


def _no_feedback(monkeypatch, target: str) -> None:
    """``target`` as a target that runs no backward edges (every toolchain's runs them)."""
    monkeypatch.setitem(TARGETS, target, dataclasses.replace(TARGETS[target], feedback=None))


@pytest.mark.parametrize("target", CONSUMERS)
def test_a_toolchain_target_holds_only_nodes_every_toolchain_reads(target):
    graph = network_to_nir(trained_like(Genotype((FORWARD, FORWARD)), neuron_for(target)), target=target)
    assert {type(n) for n in graph.nodes.values()} <= READ
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF):  # batch norm never sits in the neurons
            assert np.all(node.r == 1) and np.all(node.v_leak == 0)
        if isinstance(node, nir.SumPool2d):  # the toolchains drop pooling padding
            assert not np.any(node.padding)
        if isinstance(node, nir.Flatten):  # negative dimensions mean the same with or without a batch
            assert node.start_dim < 0 and node.end_dim < 0
    assert graph.metadata["target"] == target


def test_the_3x3_average_pool_is_exact_at_every_border_without_scale():
    builder = NIRBuilder(TARGETS["nir"], 1e-3)
    g = builder.g
    source = g.add("input", nir.Input(input_type={"input": np.array([3, 5, 7])}), (3, 5, 7))
    last, _ = builder.chain([AvgPool3x3()], source, (3, 5, 7), "pool")
    g.add("output", nir.Output(output_type={"output": np.array([3, 5, 7])}), (3, 5, 7), last)
    graph = g.to_nir({"target": "nir"})
    assert not any(isinstance(n, (nir.Scale, nir.AvgPool2d)) for n in graph.nodes.values())
    x = torch.randn(4, 3, 5, 7)
    got, _ = load_nir(graph, dt=1e-3)(x)
    assert torch.allclose(got, AvgPool3x3()(x), atol=1e-6)


@pytest.mark.parametrize("cell, batch_norms", [(FOLDABLE, 0), (SKIP_INTO_OUTPUT, 1)])
def test_batch_norm_folds_into_the_convolutions_that_feed_only_the_neurons(cell, batch_norms, tmp_path):
    net = trained_like(Genotype((cell, cell)))
    graph = network_to_nir(net)
    names = [n for n in graph.nodes if n.endswith("_bn")]
    assert len([n for n in names if n.startswith("reduction0")]) == batch_norms
    x = images()
    with torch.no_grad():
        expected = net.timestep_logits(x)
    assert torch.allclose(run_nir(load_nir(graph), x, net.macro.timesteps), expected, atol=1e-5)


def test_each_target_writes_the_lif_its_reader_integrates_exactly():
    rate = 0.75  # tau = 4/3 steps
    tau, threshold = TARGETS["norse"].lif_parameters(rate, 1.0, 1e-3, (2,))
    assert (1e-3 * torch.from_numpy(np.float32(1) / tau)).tolist() == [0.75, 0.75]  # norse's dt * (1 / tau)
    layer = LIF(NeuronConfig(model="sinabs_lif", reset="soft", surrogate="exp", threshold=0.5))  # tau = 4/3 steps
    node = TARGETS["sinabs"].neuron_node(layer, 1e-3, (4, 3, 3))
    assert isinstance(node, nir.LIF) and node.tau.shape == (4, 1, 1)
    decay = torch.exp(-1.0 / torch.from_numpy(node.tau))  # sinabs's, from the file's float32 tau
    assert decay.unique().tolist() == [layer._decay().item()] and abs(layer._decay().item() - 0.25) < 1e-7
    assert np.all(node.v_threshold == 0.5)  # sinabs integrates v <- decay v + I, as sinabs_lif trains
    node = TARGETS["sinabs"].neuron_node(LIF(NeuronConfig(model="sinabs_iaf", reset="soft", surrogate="exp")), 1e-3, (4, 3, 3))
    assert isinstance(node, nir.IF) and np.all(node.r == 1) and node.v_threshold.shape == (4, 1, 1)
    tau, threshold = TARGETS["snntorch"].lif_parameters(rate, 1.0, 1e-3, (2,))
    assert np.allclose(tau, 4 / 3 * 1e-4) and np.all(threshold == 1)  # snnTorch assumes dt = 1e-4 s


def _depth_first(graph: nir.NIRGraph) -> list[str]:
    """The order nirtorch's GraphExecutor (norse's and sinabs's loader) runs the nodes in:
    depth-first pre-order from the input along each node's edges as listed."""
    children = defaultdict(list)
    for a, b in graph.edges:
        children[a].append(b)
    order, seen = [], set()

    def visit(name):
        if name not in seen:
            seen.add(name)
            order.append(name)
            for child in children[name]:
                visit(child)

    visit(next(n for n, node in graph.nodes.items() if isinstance(node, nir.Input)))
    return order


@pytest.mark.parametrize("target", ["norse", "sinabs"])
def test_the_spine_makes_the_depth_first_executor_run_every_sum_after_its_inputs(target):
    graph = network_to_nir(trained_like(Genotype((FORWARD, FORWARD)), neuron_for(target)), target=target)
    order = _depth_first(graph)
    assert order == list(graph.nodes) and isinstance(graph.nodes[order[-1]], nir.Output)
    position = {n: i for i, n in enumerate(order)}
    assert all(position[a] < position[b] for a, b in graph.edges)
    bridges = [n for n in graph.nodes if n.startswith("bridge")]
    assert bridges and all(np.all(graph.nodes[b].v_threshold >= 1e30) for b in bridges)  # they never fire


def test_snntorch_names_sort_in_the_order_nodes_must_run():
    graph = network_to_nir(trained_like(Genotype((FORWARD, FORWARD))), target="snntorch")
    names = sorted(graph.nodes)  # nir.read's order, which nirtorch runs
    position = {n: i for i, n in enumerate(names)}
    assert all(position[a] < position[b] for a, b in graph.edges)


@pytest.mark.parametrize("target", CONSUMERS)
def test_what_a_toolchain_cannot_run_is_one_line_naming_the_part_and_the_target(target, monkeypatch):
    with monkeypatch.context() as patch:
        _no_feedback(patch, target)
        with pytest.raises(ExportError, match=rf"cell0_2_0_conv1x1 \(cell 0, 2 -> 0\): a backward edge .* target {target}") as error:
            network_to_nir(trained_like(Genotype((INTO_INPUT, FORWARD)), neuron_for(target)), target=target)
    assert "\n" not in str(error.value)
    if neuron_for(target) is None:
        with pytest.raises(ExportError, match=f"target {target} resets every neuron to 0"):
            network_to_nir(trained_like(Genotype((FORWARD,)), NeuronConfig(threshold=0.5, v_reset=0.2)), target=target)


@pytest.mark.parametrize("target", list(TARGETS))
def test_a_target_refuses_neurons_its_reader_would_run_otherwise_in_one_line(target):
    """spikenas's lif fires once per step at most and resets to 0; sinabs builds neurons that fire
    several times and subtract: a file for one is never read by the other."""
    others = [m for m in ("lif", "sinabs_lif", "sinabs_iaf") if m not in TARGETS[target].neurons]
    for model in others:
        neuron = NeuronConfig(threshold=0.5, **({} if model == "lif" else dict(model=model, reset="soft", surrogate="exp")))
        runs = ", ".join(t for t in TARGETS if model in TARGETS[t].neurons)
        with pytest.raises(ExportError, match=rf"_0: target {target} runs neuron model .*, this network's is {model} "
                                              rf"\(.*\), which runs in target {runs}; search with --export_target {target}") as error:
            network_to_nir(trained_like(Genotype((FORWARD,)), neuron), target=target)
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("target", list(TARGETS))
def test_files_have_no_v_reset_when_it_is_zero_so_nir_1_0_4_reads_them(target, tmp_path):
    path = tmp_path / "net.nir"
    write(path, network_to_nir(trained_like(Genotype((FORWARD,)), neuron_for(target)), target=target))
    with h5py.File(path) as handle:
        names = []
        handle.visit(names.append)
    assert not [n for n in names if n.endswith("v_reset")]
    # nir 1.0.5+ reads the missing field as zeros (sinabs's per-channel parameters, which sinabs
    # needs, do not pass nir 1.0.8's type inference; sinabs installs nir 1.0.4, which has none)
    unchecked = TARGETS[target].per_channel and "type_check" in inspect.signature(nir.read).parameters
    graph = nir.read(path, **({"type_check": False} if unchecked else {}))
    assert all(np.all(getattr(n, "v_reset", 0) == 0) for n in graph.nodes.values() if isinstance(n, (nir.LIF, nir.IF)))


def test_search_told_the_target_proposes_only_what_it_runs_and_records_it(tmp_path, capsys, monkeypatch):
    _no_feedback(monkeypatch, "sinabs")
    main(["search", "--config", SEARCH_CONFIG, "--trainer.default_root_dir", str(tmp_path),
          "--trainer.logger.init_args.save_dir", str(tmp_path), "--export_target", "sinabs", "--space.backward", "true"])
    out = capsys.readouterr().out
    assert "target sinabs runs no backward edges: searching forward edges only" in out
    assert "target sinabs runs neuron model sinabs_lif (sinabs's LIF: several spikes per step, reset by subtraction): " \
           "training that, surrogate super" in out
    final = next(tmp_path.rglob("final.yaml"))
    config = yaml.safe_load(final.read_text())
    assert config["model"]["export_target"] == "sinabs"
    assert not any(e.backward for cell in Genotype.from_dict(config["model"]["genotype"]).cells for e in cell.edges)
    assert config["model"]["neuron"]["model"] == "sinabs_lif" and config["model"]["neuron"]["reset"] == "soft"


def _fit_recurrent(tmp_path) -> tuple[Path, Path]:
    """``final.yaml`` of a network with backward edges (two cells: a cycle into the input node,
    a delay on no cycle) on the tiny search's data and macro, and its checkpoint after ``fit``."""
    tiny = yaml.safe_load(Path(SEARCH_CONFIG).read_text())
    final = tmp_path / "final.yaml"
    final.write_text(yaml.safe_dump({
        "seed_everything": 0, "data": tiny["data"],
        "model": {"genotype": Genotype((INTO_INPUT, DELAY_ONLY)).to_dict(), "macro": tiny["model"]["macro"]},
        "trainer": {"accelerator": "cpu", "max_epochs": 1, "enable_progress_bar": False, "default_root_dir": str(tmp_path)},
    }))
    main(["fit", "--config", str(final)])
    return final, next(tmp_path.rglob("last.ckpt"))


@pytest.mark.parametrize("network", ["searched", "recurrent"])
def test_export_checks_each_target_with_its_own_reader_where_installed(network, tmp_path, capsys):
    # spikenas's lif neurons
    final, ckpt = _final_and_checkpoint(tmp_path) if network == "searched" else _fit_recurrent(tmp_path)
    for target in TARGETS:
        args = ["export", "--config", str(final), "--ckpt_path", str(ckpt), "--output", str(tmp_path / f"{target}.nir"),
                "--target", target]
        if "lif" not in TARGETS[target].neurons:
            with pytest.raises(SystemExit, match=f"target {target} runs neuron model"):
                main(args)
            assert not (tmp_path / f"{target}.nir").exists()
            continue
        main(args)
        line = capsys.readouterr().out.strip().splitlines()[-1]
        module = {"nir": "spikenas", "snntorch": "snntorch", "norse": "norse"}[target]
        if importlib.util.find_spec(module) is None:
            assert f"not run back: {module} is not installed here" in line
        else:
            assert "same class for 16/16" in line, line


class _OddOps:
    """Operations the export refuses, one reason each, and two it runs."""

    @hookimpl
    def spikenas_register_operations(self, registry):
        registry.add("gelu", lambda c, n: SpikingSequential(nn.GELU()))
        registry.add("plain", lambda c, n: nn.GELU())
        registry.add("bn_last", lambda c, n: SpikingSequential(LIF(n), nn.BatchNorm2d(c)))
        registry.add("rect", lambda c, n: SpikingSequential(nn.Conv2d(c, c, (1, 3), padding=(0, 1))))
        registry.add("overlap", lambda c, n: SpikingSequential(nn.AvgPool2d(3, 1, 1)))
        registry.add("soft", lambda c, n: SpikingSequential(LIF(dataclasses.replace(n, reset="soft"))))
        registry.add("v_reset", lambda c, n: SpikingSequential(LIF(dataclasses.replace(n, v_reset=0.25))))
        registry.add("bn_lif", lambda c, n: SpikingSequential(nn.BatchNorm2d(c), LIF(n)))
        registry.add("pool2", lambda c, n: SpikingSequential(nn.AvgPool2d(2)))


# what every target refuses of each operation, as building its NIR did before targets declared
# what they run ({t}: the target); the built-in operations and the example plugin's run everywhere
REFUSED = {
    "gelu": "gelu: layer GELU has no NIR form (target {t})",
    "plain": "GELU is not a chain of layers",
    "bn_last": "bn_last_1: a batch norm that neither follows a convolution nor precedes LIF neurons has no NIR form",
    "rect": "rect_0: only square, undilated convolutions are exported",
    "overlap": "overlap_0: only non-overlapping average pooling without padding is exported",
    "soft": "soft_0: neuron reset 'soft' has no NIR form (a NIR LIF resets to v_reset); train with reset 'hard' to export",
    "v_reset": "v_reset_0: target {t} resets every neuron to 0 (its importer ignores v_reset), this network resets to 0.25",
    "pool2": "pool2: turns a [2, 8, 8] map into [2, 4, 4]",  # the export's own condition on a cell's edge
}
# cells of [2, 8, 8] and [4, 4, 4]; an operation is refused at the first shape it fails at
SHAPES = MacroConfig(input_shape=(1, 8, 8), num_classes=3, timesteps=2, channels=2, head_pool=2, head_hidden=4)
RUN_EVERYWHERE = ["zero", "skip", "conv1x1", "conv3x3", "avgpool", "dwsep3x3", "bn_lif"]


@pytest.mark.parametrize("target", list(TARGETS))
def test_a_target_says_what_it_runs_without_building_nir(target, dwsep, monkeypatch):
    def no_nir(*args, **kwargs):
        raise AssertionError("restrict_space built NIR")

    monkeypatch.setattr(Graph, "add", no_nir)
    monkeypatch.setattr(nir, "NIRGraph", no_nir)
    sinabs_neurons = neuron_for(target) is not None  # they reset by subtraction only, to no other potential
    with temporary_plugin(_OddOps(), name="odd-ops"):
        ops = RUN_EVERYWHERE + [op for op in REFUSED if not (sinabs_neurons and op in ("soft", "v_reset"))]
        space, notes = restrict_space(SearchSpaceConfig(operations=ops, backward=True), target,
                                      neuron_for(target) or NeuronConfig(), get_registries().operations, SHAPES)
    refused = {name: reason for name, reason in REFUSED.items() if name in ops
               and not (name == "v_reset" and TARGETS[target].keeps_v_reset)}
    if TARGETS[target].keeps_v_reset and not NIR_HAS_V_RESET:  # nir < 1.0.5 (sinabs's pin) writes no reset potential
        old_nir = [note for note in notes if "'v_reset'" in note]
        assert len(old_nir) == 1 and "install nir>=1.0.5" in old_nir[0]
        notes = [note for note in notes if note not in old_nir]
        ops = [op for op in ops if op != "v_reset"]
    assert space.operations == [op for op in ops if op not in refused]
    assert space.backward == TARGETS[target].recurrent
    assert notes == ([] if TARGETS[target].recurrent else [f"target {target} runs no backward edges: searching forward edges only"]) + [
        f"target {target} cannot run operation {name!r} at cell 0's [C, H, W] = [2, 8, 8] "
        f"({reason.format(t=target)}): left out" for name, reason in refused.items()]


def test_export_without_target_uses_final_yamls_or_refuses_in_one_line_naming_the_targets(tmp_path, capsys):
    final, ckpt = _final_and_checkpoint(tmp_path, "--export_target", "norse")
    out = tmp_path / "net.nir"
    main(["export", "--config", str(final), "--ckpt_path", str(ckpt), "--output", str(out)])
    assert nir.read(out).metadata["target"] == "norse"
    assert "same class for 16/16" in capsys.readouterr().out.strip().splitlines()[-1]

    config = yaml.safe_load(final.read_text())
    config["model"]["export_target"] = None  # as a search without --export_target records it
    final.write_text(yaml.safe_dump(config))
    out.unlink()
    with pytest.raises(SystemExit) as error:
        main(["export", "--config", str(final), "--ckpt_path", str(ckpt), "--output", str(out)])
    text = str(error.value.code)
    assert "\n" not in text and text.endswith("name who reads it: nir, snntorch, norse, sinabs, speck")
    assert "export needs --target: final.yaml records no export target" in text and not out.exists()


def test_fit_refuses_neurons_the_recorded_target_does_not_run():
    from spikenas.train.classifier import SNNClassifier

    genotype = Genotype((FORWARD,)).to_dict()
    with pytest.raises(ExportError, match="model.neuron: target speck runs neuron model sinabs_iaf .*, this network's is "
                                          "sinabs_lif"):
        SNNClassifier(genotype=genotype, neuron={"model": "sinabs_lif", "reset": "soft"}, export_target="speck")
    model = SNNClassifier(genotype=genotype, neuron={"model": "sinabs_iaf", "reset": "soft"}, export_target="speck")
    assert model.network is not None
