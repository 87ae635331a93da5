"""Shared fixtures. The suite is hermetic: entry-point plugins are not autoloaded in-process
(``SPIKENAS_DISABLE_PLUGIN_AUTOLOAD``); tests that need the example plugin register it with
:func:`spikenas.plugin.testing.temporary_plugin`, and one test checks real autoload in a subprocess."""

from __future__ import annotations

import importlib
import os
import random
import sys
from pathlib import Path

os.environ.setdefault("SPIKENAS_DISABLE_PLUGIN_AUTOLOAD", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from spikenas import CellGenotype, Genotype, get_registries  # noqa: E402
from spikenas.neuron import NeuronConfig  # noqa: E402
from spikenas.space import MacroConfig  # noqa: E402
from spikenas.plugin.testing import temporary_plugin  # noqa: E402

# Test tensors are tiny: one intra-op thread is faster, and immune to a busy machine (on 2 loaded
# cores, torch's default thread pool made a 3 ms forward/backward take 500 ms).
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
DWSEP_DIR = ROOT / "plugins" / "spikenas-dwsep"

# what `spikenas plugins` lists with autoload off: every built-in item and its plugin
BUILTIN_LINES = [
    "operation zero spikenas.ops.builtin",
    "operation skip spikenas.ops.builtin",
    "operation conv1x1 spikenas.ops.builtin",
    "operation conv3x3 spikenas.ops.builtin",
    "operation avgpool spikenas.ops.builtin",
    "cost_model memory spikenas.cost.memory",
    "cost_model speck spikenas.cost.speck",
    "score sahd spikenas.score.sahd",
    "score sahd_layer spikenas.score.sahd",
    "score hamming spikenas.score.hamming",
    "score size spikenas.cost.size",
    "score synflow spikenas.score.synflow",
    "score naswot_head spikenas.score.naswot",
    "strategy spikenas spikenas.search.consecutive",
    "strategy random spikenas.search.random_search",
    "strategy evolution spikenas.search.evolution",
]


def load_dwsep():
    """The example plugin module: the installed package, else the in-repo source."""
    try:
        return importlib.import_module("spikenas_dwsep")
    except ImportError:
        sys.path.insert(0, str(DWSEP_DIR))
        return importlib.import_module("spikenas_dwsep")


@pytest.fixture
def registries():
    return get_registries()


@pytest.fixture
def operations(registries):
    return registries.operations


@pytest.fixture
def neuron() -> NeuronConfig:
    return NeuronConfig()


@pytest.fixture
def tiny_macro() -> MacroConfig:
    """A network small enough to build hundreds of times per second."""
    return MacroConfig(input_shape=(1, 8, 8), num_classes=3, timesteps=3, channels=4,
                       head_pool=2, head_hidden=8, votes=2, dropout=0.0)


@pytest.fixture
def snasnet_cell() -> CellGenotype:
    """A forward-only 4-node cell using every built-in operation."""
    return CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("skip", 0, 2), ("conv1x1", 1, 2),
                                     ("avgpool", 0, 3), ("zero", 1, 3), ("conv3x3", 2, 3)])


@pytest.fixture
def backward_cell() -> CellGenotype:
    """A cell with a backward edge (node 3 at t-1 feeds node 1 at t)."""
    return CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("zero", 0, 2), ("conv1x1", 1, 2),
                                     ("skip", 0, 3), ("conv1x1", 3, 1), ("conv3x3", 2, 3)])


@pytest.fixture
def genotype(snasnet_cell, backward_cell) -> Genotype:
    return Genotype((snasnet_cell, backward_cell))


@pytest.fixture
def dwsep():
    """The example third-party plugin, registered for the duration of the test."""
    module = load_dwsep()
    with temporary_plugin(module, name="dwsep"):
        yield module


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)



@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Hypothesis draws new inputs on every run (the fuzz tests, tests/test_fuzz*.py): a seed
    is chosen here unless ``--hypothesis-seed`` gives one, and printed in the header, so that
    ``pytest --hypothesis-seed=N`` replays a failing run."""
    if config.getoption("hypothesis_seed", None) is None and hasattr(config.option, "hypothesis_seed"):
        config.option.hypothesis_seed = str(random.SystemRandom().randrange(2**32))


def pytest_report_header(config):
    seed = config.getoption("hypothesis_seed", None)
    if seed is not None:
        return f"hypothesis seed: {seed} (replay with --hypothesis-seed={seed})"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` (``scripts/test.sh``): every test goes to whichever worker is free,
    except that a module defining a class-, module- or package-scoped fixture runs whole on one
    worker, so the fixture is built once (the consumer matrix's nox environments included).
    pytest-xdist 3.8's own loadgroup marks its groups by renaming node ids, which pytest 9.2
    ignores, so its ``xdist_group`` marks would do nothing: the groups are found here instead."""
    if config.getvalue("dist") != "loadgroup":
        return None
    import re

    from xdist.scheduler import LoadScopeScheduling

    shared_fixture = re.compile(r"fixture\((?:[^()]|\([^()]*\))*scope=[\"'](?:class|module|package)[\"']")

    class ModuleFixtureScheduling(LoadScopeScheduling):
        shared: dict[str, bool] = {}

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if path not in self.shared:
                file = Path(config.rootpath, path)
                self.shared[path] = file.is_file() and bool(shared_fixture.search(file.read_text()))
            return path if self.shared[path] else nodeid

    return ModuleFixtureScheduling(config, log)
