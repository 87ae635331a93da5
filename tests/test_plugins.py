"""Plugins: the listing, autoloading, and the example third-party package (spikenas-dwsep)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import pytest
import torch

from spikenas import CellGenotype, Genotype
from spikenas.app.cli import main
from spikenas.cost import bits_to_bytes
from spikenas.network import SpikingNetwork
from spikenas.plugin import get_registries
from spikenas.plugin.listing import format_plugins
from spikenas.space import CellSpace, validate_genotype
from spikenas.network.profile import Profiler

from conftest import BUILTIN_LINES, ROOT

DWSEP_LINES = ["operation dwsep3x3 dwsep", "cost_model int8_state dwsep"]


def cli_lines(capsys) -> list[str]:
    main(["plugins"])
    return capsys.readouterr().out.splitlines()


# -- listing -------------------------------------------------------------------------------------
def test_cli_lists_builtins(capsys):
    lines = cli_lines(capsys)
    assert lines == BUILTIN_LINES  # built-ins only: autoload is off in the test process
    assert all(len(line.split(" ")) == 3 for line in lines)


def test_cli_lists_the_example_plugin(dwsep, capsys):
    lines = cli_lines(capsys)
    assert set(BUILTIN_LINES + DWSEP_LINES) == set(lines)
    assert lines.index("operation dwsep3x3 dwsep") > lines.index("operation avgpool spikenas.ops.builtin")
    assert format_plugins().splitlines() == lines


def _entry_point_installed() -> bool:
    return any(ep.name == "dwsep" for ep in importlib.metadata.entry_points(group="spikenas"))


@pytest.mark.skipif(not _entry_point_installed(), reason="spikenas-dwsep is not installed (scripts/setup.sh installs it)")
def test_installed_plugin_is_autoloaded():
    env = {k: v for k, v in os.environ.items() if k != "SPIKENAS_DISABLE_PLUGIN_AUTOLOAD"}
    code = "from spikenas.plugin.listing import format_plugins; print(format_plugins())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    lines = out.stdout.splitlines()
    for line in BUILTIN_LINES + DWSEP_LINES:
        assert line in lines


# -- the example package: spikenas-dwsep ---------------------------------------------------------
DWSEP_GENOTYPE = """
cells:
  - nodes: 4
    edges:
      - [dwsep3x3, 0, 1]
      - [zero, 0, 2]
      - [dwsep3x3, 1, 2]
      - [conv3x3, 0, 3]
      - [dwsep3x3, 3, 1]
      - [skip, 2, 3]
  - nodes: 4
    edges: [[dwsep3x3, 0, 3], [conv1x1, 0, 1], [dwsep3x3, 1, 3]]
"""


def test_example_plugin_uses_only_the_public_api():
    source = (ROOT / "plugins/spikenas-dwsep/spikenas_dwsep/__init__.py").read_text()
    imports = [line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert "pluggy" not in imports
    assert set(imports) <= {"__future__", "torch", "spikenas", "spikenas.ops", "spikenas.cost", "spikenas.neuron"}


def test_dwsep_genotype_validates_costs_builds_and_trains(dwsep, tiny_macro, neuron):
    registries = get_registries()
    g = Genotype.from_yaml(DWSEP_GENOTYPE)
    validate_genotype(g, registries.operations)
    assert Genotype.from_yaml(g.to_yaml()) == g

    # exact cost: 9C + C^2 + 2C parameters per dwsep3x3 edge, counted before building anything
    profiler = Profiler(tiny_macro, neuron, registries.operations)
    profile = profiler.profile(g)
    c0, c1 = tiny_macro.cell_shape(0)[0], tiny_macro.cell_shape(1)[0]
    rows = {layer.name: layer for layer in profile.layers}
    assert rows["cell0.0>1:dwsep3x3"].params == 9 * c0 + c0 * c0 + 2 * c0
    assert rows["cell1.0>3:dwsep3x3"].params == 9 * c1 + c1 * c1 + 2 * c1
    h, w = tiny_macro.cell_shape(0)[1:]
    assert rows["cell0.3>1:dwsep3x3"].neurons == c0 * h * w  # one LIF in front

    net = SpikingNetwork(g, tiny_macro, neuron, registries.operations, seed=0)
    numel = sum(p.numel() for p in net.parameters())
    assert profile.params == numel
    assert net.cells[0].recurrent  # the backward dwsep3x3 edge runs in step mode

    report = registries.cost_models.create("int8_state")(profile)
    assert report.model == "int8_state"
    assert report.param_bytes == numel  # 8 bits each
    assert report.state_bytes == 2 * profile.neurons  # 16 bits each
    assert report.total_bytes == numel + 2 * profile.neurons
    assert [row.name for row in report.layers] == [layer.name for layer in profile.layers]
    assert sum(row.param_bytes for row in report.layers) == report.param_bytes
    memory = registries.cost_models.create("memory", weight_bits=8)(profile)
    assert report.total_bytes - memory.total_bytes == bits_to_bytes(profile.neurons, 16)

    images, labels = torch.randn(4, *tiny_macro.input_shape), torch.tensor([0, 1, 2, 1])
    logits = net(images)
    assert logits.shape == (4, tiny_macro.num_classes)
    torch.nn.functional.cross_entropy(logits, labels).backward()
    dw = net.cells[0].ops["0_1_dwsep3x3"]
    assert dw[1].groups == c0 and dw[1].weight.grad.abs().sum() > 0


def test_dwsep_in_a_search_space(dwsep, tiny_macro, neuron):
    import random

    registries = get_registries()
    space = CellSpace(["zero", "skip", "conv3x3", "dwsep3x3"], registries.operations, backward=True)
    rng = random.Random(0)
    cells = [space.sample(rng) for _ in range(50)]
    assert any(e.op == "dwsep3x3" for c in cells for e in c.edges)
    profiler = Profiler(tiny_macro, neuron, registries.operations)
    for c in cells[:10]:
        g = Genotype((c,))
        with torch.device("meta"):
            net = SpikingNetwork(g, tiny_macro, neuron, registries.operations)
        assert profiler.profile(g).params == sum(p.numel() for p in net.parameters())


def test_dwsep_is_cheaper_than_conv3x3(dwsep, tiny_macro, neuron):
    registries = get_registries()
    profiler = Profiler(tiny_macro.replace(channels=32), neuron, registries.operations)
    conv = CellGenotype.from_ops(4, [("conv3x3", 0, 3)])
    sep = CellGenotype.from_ops(4, [("dwsep3x3", 0, 3)])
    assert profiler.cell_counts(sep, 0)[0] * 6 < profiler.cell_counts(conv, 0)[0]  # 1,376 vs 9,280 at C = 32


def test_help_names_the_commands_outside_lightning(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "'spikenas plugins'" in text and "'spikenas profile --config X.yaml'" in text
