"""NIR export: the graph reproduces the network when run back by spikenas's NIR reader, and what
NIR cannot express is refused with one line (the toolchains' targets: test_export_targets.py)."""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import pytest
import torch
import yaml
from torch import nn

from spikenas import CellGenotype, Genotype
from spikenas.app.cli import main
from spikenas.export import ExportError, load_nir, network_to_nir, run_nir
from spikenas.network import SpikingNetwork
from spikenas.neuron import NeuronConfig
from spikenas.neuron.lif import record_spikes
from spikenas.ops import SpikingSequential
from spikenas.plugin import hookimpl
from spikenas.train.quantize import QuantizationConfig, quantize_weights
from spikenas.space import MacroConfig
from spikenas.plugin.testing import temporary_plugin

SEARCH_CONFIG = str(Path(__file__).parent / "configs" / "search_tiny.yaml")

FORWARD = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("skip", 0, 2), ("conv1x1", 1, 2),
                                    ("avgpool", 0, 3), ("conv3x3", 2, 3)])
# a cycle: n0' = x + conv1x1(n2)[t-1]; n1 = conv3x3(n0'); n2 = n1; n3 = n0' + n2
INTO_INPUT = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("conv1x1", 2, 0), ("skip", 1, 2),
                                       ("skip", 0, 3), ("skip", 2, 3)])
# no cycle: node 1 never reaches node 2, so the delayed edge 2 -> 1 is a plain one-step buffer
DELAY_ONLY = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("avgpool", 0, 2), ("conv1x1", 2, 1),
                                       ("skip", 1, 3), ("skip", 2, 3)])
# node 1's only input is the recurrent edge 3 -> 1 (cycle 3 -> 1 -> 2 -> 3): for nirtorch's executors the
# toolchains' files feed it zeros from node 0 too (tests/test_export_targets.py)
RECURRENT_ONLY = CellGenotype.from_ops(4, [("conv3x3", 0, 3), ("conv1x1", 3, 1), ("skip", 1, 2), ("skip", 2, 3)])


def trained_like(genotype: Genotype, neuron: NeuronConfig | None = None, votes: int = 2) -> SpikingNetwork:
    """A network whose batch norms hold statistics and affine terms far from their initial
    values (so folding them is tested) and whose neurons fire at every depth."""
    macro = MacroConfig(input_shape=(1, 12, 12), num_classes=3, timesteps=4, channels=4, head_pool=2,
                        head_hidden=8, votes=votes, dropout=0.0)
    net = SpikingNetwork(genotype, macro, neuron or NeuronConfig(threshold=0.5), seed=0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.8 - 0.3)
            if isinstance(m, nn.Linear):
                m.weight.mul_(4)
    return net.eval()


def images(n: int = 6) -> torch.Tensor:
    return torch.rand(n, 1, 12, 12, generator=torch.Generator().manual_seed(2)) * 3


def round_trip(net: SpikingNetwork, tmp_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    path = tmp_path / "net.nir"
    nir.write(path, network_to_nir(net))
    x = images()
    with torch.no_grad():
        expected = net.timestep_logits(x)
    return run_nir(load_nir(path), x, net.macro.timesteps), expected


@pytest.mark.parametrize("cells", [(FORWARD, FORWARD), (INTO_INPUT, FORWARD), (DELAY_ONLY, INTO_INPUT)],
                         ids=["forward", "recurrent", "delay-without-cycle"])
def test_the_file_run_by_nirtorch_gives_the_networks_logits_at_every_step(cells, tmp_path):
    net = trained_like(Genotype(cells))
    rates = []
    with torch.no_grad(), record_spikes(net, lambda s: rates.append(float(s.mean()))):
        net.timestep_logits(images())
    assert min(rates[-2:]) > 0.01  # both head layers fire: the logits depend on the spikes
    got, expected = round_trip(net, tmp_path)
    assert got.shape == expected.shape == (4, 6, 3)
    assert expected.std(0).max() > 0.05  # the logits change over time (recurrence and neurons at work)
    assert torch.allclose(got, expected, atol=1e-5)


def test_a_backward_edge_is_a_one_step_delay_on_a_recurrent_connection():
    graph = network_to_nir(trained_like(Genotype((INTO_INPUT, FORWARD))), dt=1e-3)
    delays = {name: node for name, node in graph.nodes.items() if isinstance(node, nir.Delay)}
    assert list(delays) == ["cell0_2_0_conv1x1_delay"] and np.allclose(delays["cell0_2_0_conv1x1_delay"].delay, 1e-3)
    # node 0 sums the stem and the delayed edge: both go straight into every reader of node 0
    assert {("cell0_2_0_conv1x1_delay", "cell0_0_1_conv3x3_0"), ("stem_0", "cell0_0_1_conv3x3_0")} <= set(graph.edges)
    lif = graph.nodes["cell0_0_1_conv3x3_0"]
    assert isinstance(lif, nir.LIF) and np.allclose(lif.tau, 1e-3 * 4 / 3) and np.allclose(lif.v_threshold, 0.5)


def test_a_recurrent_edge_that_is_its_nodes_only_input_runs_back_exactly(tmp_path):
    net = trained_like(Genotype((RECURRENT_ONLY,)))
    assert any(isinstance(n, nir.Delay) for n in network_to_nir(net).nodes.values())
    got, expected = round_trip(net, tmp_path)
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("bits", [4, 8])
def test_quantised_weights_stay_quantised_per_channel_after_batch_norm_folding(bits, tmp_path):
    net = trained_like(Genotype((FORWARD, FORWARD)))
    quantize_weights(net, QuantizationConfig(weight_bits=bits))
    graph = network_to_nir(net)
    fixed = ("_pad", "_place", "_bn")  # the average pool's and batch norms' own weights, not trained ones
    convs = [n for name, n in graph.nodes.items() if isinstance(n, nir.Conv2d) and not name.endswith(fixed)]
    assert len(convs) >= 6
    for conv in convs:
        for channel in conv.weight.reshape(conv.weight.shape[0], -1):
            assert len(np.unique(channel)) <= 2**bits - 1
            integers = channel / (np.abs(channel).max() / (2 ** (bits - 1) - 1))
            assert np.allclose(integers, np.round(integers), atol=1e-3)  # integers times one scale
    got, expected = round_trip(net, tmp_path)
    assert torch.allclose(got, expected, atol=1e-5)


def test_a_plugin_operation_of_known_layers_exports(dwsep, tmp_path):
    cell = CellGenotype.from_ops(4, [("dwsep3x3", 0, 1), ("skip", 1, 2), ("skip", 0, 3), ("dwsep3x3", 2, 3)])
    got, expected = round_trip(trained_like(Genotype((cell,))), tmp_path)
    assert torch.allclose(got, expected, atol=1e-5)


class _GeluOp:
    @hookimpl
    def spikenas_register_operations(self, registry):
        registry.add("gelu", lambda channels, neuron: SpikingSequential(nn.GELU()))


@pytest.mark.parametrize("what, message", [
    ("soft", "neuron reset 'soft' has no NIR form"),
    ("plugin", "cell0_0_3_gelu: layer GELU has no NIR form \\(target nir\\)"),
])
def test_what_nir_cannot_express_is_a_one_line_error_naming_the_part(what, message):
    with temporary_plugin(_GeluOp(), name="gelu-op"):
        if what == "soft":
            net = trained_like(Genotype((FORWARD,)), NeuronConfig(reset="soft"))
        else:
            net = trained_like(Genotype((CellGenotype.from_ops(4, [("gelu", 0, 3)]),)))
        with pytest.raises(ExportError, match=message) as error:
            network_to_nir(net)
    assert "\n" not in str(error.value)


def test_the_vote_is_a_layer_of_its_own_so_trained_weights_stay_as_they_are(tmp_path):
    net = trained_like(Genotype((FORWARD,)), votes=5)
    graph = network_to_nir(net)
    last, vote = graph.nodes["classifier_2"], graph.nodes["vote"]
    assert np.array_equal(last.weight, net.head.classifier[2].weight.detach().numpy())  # 3 classes x 5 votes = 15
    assert isinstance(vote, nir.Affine) and vote.weight.shape == (3, 15) and np.allclose(vote.weight.sum(1), 1.0)
    assert ("classifier_2", "vote") in graph.edges and ("vote", "output") in graph.edges
    got, expected = round_trip(net, tmp_path)
    assert torch.allclose(got, expected, atol=1e-5)


def _final_and_checkpoint(tmp_path: Path, *search_args: str) -> tuple[Path, Path]:
    main(["search", "--config", SEARCH_CONFIG, "--trainer.default_root_dir", str(tmp_path),
          "--trainer.logger.init_args.save_dir", str(tmp_path), *search_args])
    final = sorted((tmp_path / "lightning_logs").glob("version_*"))[-1] / "final.yaml"
    fit_dir = tmp_path / "fit"
    main(["fit", "--config", str(final), "--trainer.default_root_dir", str(fit_dir),
          "--trainer.logger.init_args.save_dir", str(fit_dir), "--trainer.max_epochs", "1"])
    return final, sorted(fit_dir.rglob("last.ckpt"))[-1]


def test_spikenas_export_writes_the_trained_8_bit_network_and_checks_it(tmp_path, capsys):
    final, ckpt = _final_and_checkpoint(tmp_path, "--budget", "20KB", "--cost_options", "{weight_bits: 8}")
    out = tmp_path / "deploy" / "net.nir"
    main(["export", "--config", str(final), "--ckpt_path", str(ckpt), "--output", str(out), "--target", "nir"])
    graph = nir.read(out)
    assert graph.metadata["weight_bits"] == 8 and graph.metadata["budget_bytes"] == 20_000
    genotype = yaml.safe_load(graph.metadata["genotype"])
    assert genotype == yaml.safe_load(final.read_text())["model"]["genotype"]
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    stem = graph.nodes["stem_0"]
    assert stem.weight.shape == tuple(state["network.stem.0.parametrizations.weight.original"].shape)
    assert "same class for 16/16" in capsys.readouterr().out
    assert not list(out.parent.glob(".net.nir.*"))  # no temporary file left


@pytest.mark.parametrize("ckpt, message", [
    (None, "export needs the trained weights: add --ckpt_path"),
    ("missing.ckpt", "checkpoint 'missing.ckpt' not found"),
])
def test_export_without_weights_is_a_one_line_error(tmp_path, ckpt, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["search", "--config", SEARCH_CONFIG, "--trainer.default_root_dir", str(tmp_path),
          "--trainer.logger.init_args.save_dir", str(tmp_path)])
    final = sorted((tmp_path / "lightning_logs").glob("version_*"))[-1] / "final.yaml"
    with pytest.raises(SystemExit) as error:
        main(["export", "--config", str(final), "--target", "nir", *(["--ckpt_path", ckpt] if ckpt else [])])
    text = str(error.value.code)
    assert text.startswith("spikenas: error: ") and message in text and "\n" not in text
    assert not (tmp_path / "network.nir").exists()
