"""SNASNet's published networks as configs: they parse, and they are SNASNet's size.

The parameter counts below are derived by hand from SNASNet's ``model_snn.py`` (class
``SNASNet``) and ``searchcells/search_cell_snn.py`` (``Neuronal_Cell_backward``), for the cells
of its README, by counting what those modules build:

- stem: conv3x3 3->128 (3,456) + BN (256)                                          3,712
- an edge conv3x3 at C: 9*C*C + 2*C (BN); conv1x1: C*C + 2*C; skip, zero, avgpool: 0
- reduction: BN(128) 256 + conv3x3 128->256 294,912 + BN(256) 512                  295,680
- last_act BN(256)                                                                     512
- classifier: Linear(256*(32/(2*second_avgpooling))**2 -> 1024, no bias) + Linear(1024 -> final, bias)

CIFAR-10 cell ``0303 0030 2002 0200``: conv3x3 on (0,1), (1,2), (0,3); conv1x1 on (2,3) and the
backward 2->0 and 3->1. Cell 1 (C = 128): 3*147,712 + 3*16,640 = 493,056; cell 2 (C = 256):
3*590,336 + 3*66,048 = 1,969,152; classifier with second_avgpooling 4: 4,096*1,024 = 4,194,304
and 1,024*100 + 100 = 102,500. Total 7,058,916.

CIFAR-100 cell ``0302 0030 3003 0000``: conv3x3 on (0,1), (1,2), (2,3) and the backward 2->0;
conv1x1 on (0,3). Cell 1: 4*147,712 + 16,640 = 607,488; cell 2: 4*590,336 + 66,048 =
2,427,392; classifier with second_avgpooling 2: 16,384*1,024 = 16,777,216 and 1,024*500 + 500 =
512,500. Total 20,624,500.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from spikenas import Genotype
from spikenas.app.cli import main
from spikenas.network import SpikingNetwork
from spikenas.space import MacroConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name, classes, params", [("snasnet_cifar10", 10, 19_520_356), ("snasnet_cifar100", 100, 20_624_500)])
def test_snasnet_config_builds_snasnets_network(name, classes, params, capsys):
    config = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    genotype = Genotype.from_dict(config["model"]["genotype"])
    assert any(e.dst == 0 for e in genotype.cells[0].edges)  # SNASNet's feedback into the cell input
    macro = MacroConfig(**config["model"]["macro"], input_shape=(3, 32, 32), num_classes=classes)
    with torch.device("meta"):
        network = SpikingNetwork(genotype, macro)
    assert sum(p.numel() for p in network.parameters()) == params
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(CONFIGS / f"{name}.yaml"), "--print_config"])
    assert done.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["class_path"] == f"spikenas.data.CIFAR{classes}"


@pytest.mark.parametrize("name, classes", [("snasnet_cifar10", 10), ("snasnet_cifar100", 100)])
def test_macro_presets_are_the_configs_macros(name, classes):
    config = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    expected = MacroConfig(**config["model"]["macro"], input_shape=(3, 32, 32), num_classes=classes)
    assert getattr(MacroConfig, name)() == expected
    assert MacroConfig.snasnet_cifar10().cell_shape(1) == (512, 16, 16)  # HEAD's channel_ratio 2 for CIFAR-10
    assert MacroConfig.snasnet_cifar100().cell_shape(1) == (256, 16, 16)  # and 1 for CIFAR-100


def test_the_intermediate_commits_cifar10_network_keeps_its_own_name():
    """263e6bc's macro (C = 128) is SNASNet's code's 7,058,916 parameters, under a name that says so."""
    config = yaml.safe_load((CONFIGS / "snasnet_cifar10.yaml").read_text())
    macro = MacroConfig.snasnet_cifar10_263e6bc()
    assert macro == MacroConfig.snasnet_cifar10(channels=128) and macro.cell_shape(1) == (256, 16, 16)
    with torch.device("meta"):
        network = SpikingNetwork(Genotype.from_dict(config["model"]["genotype"]), macro)
    assert sum(p.numel() for p in network.parameters()) == 7_058_916
