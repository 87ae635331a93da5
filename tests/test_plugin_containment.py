"""Plugins are contained: a broken one (import, hooks, registration, contract) is named and
disabled while the rest works; registration runs through pluggy's hooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from spikenas import Genotype, SpikenasError, hookimpl
from spikenas.cost import MemoryReport
from spikenas.network import SpikingNetwork
from spikenas.ops import SpikingSequential
from spikenas.plugin import get_registries
from spikenas.plugin.manager import PluginDisabledWarning
from spikenas.space.config import SearchSpaceConfig
from spikenas.search.cell_search import build_context
from spikenas.plugin.testing import temporary_plugin

from conftest import BUILTIN_LINES, ROOT


def installed(tmp_path, **plugins: str) -> dict[str, str]:
    """An environment in which ``plugins`` (``{entry-point name: module}``) are installed
    entry points of the ``spikenas`` group (a distribution on ``PYTHONPATH``), autoload on."""
    dist = tmp_path / "spikenas_fake_plugins-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: spikenas-fake-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[spikenas]\n" + "".join(f"{k} = {v}\n" for k, v in plugins.items()))
    env = {k: v for k, v in os.environ.items() if k != "SPIKENAS_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    return env


# `spikenas plugins` in a fresh process per setting: one interpreter imports the CLI (seconds of
# torch and Lightning) and forks a child per setting, which sets it before the plugins first load
PLUGINS_FORKED = """
import json, os, sys, traceback
from spikenas.app.cli import main
for i, setting in enumerate(json.loads(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        os.environ.update(setting)
        for fd, stream in ((1, "out"), (2, "err")):
            os.dup2(os.open(os.path.join(sys.argv[2], f"{i}.{stream}"), os.O_WRONLY | os.O_CREAT), fd)
        code = 0
        try:
            main(["plugins"])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (print(exit_.code, file=sys.stderr) or 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def spikenas_plugins(out: Path, env: dict[str, str], *settings: dict[str, str]) -> list[subprocess.CompletedProcess]:
    """``spikenas plugins`` under ``env`` updated with each of ``settings``, each in its own
    process (its output in the folder ``out``)."""
    out.mkdir()
    parent = subprocess.run([sys.executable, "-c", PLUGINS_FORKED, json.dumps(settings), str(out)], env=env,
                            capture_output=True, text=True, cwd=ROOT)
    assert parent.returncode == 0 and len(parent.stdout.split()) == len(settings), parent.stderr
    return [subprocess.CompletedProcess(["spikenas", "plugins"], int(code), (out / f"{i}.out").read_text(),
                                        (out / f"{i}.err").read_text()) for i, code in enumerate(parent.stdout.split())]


def test_a_plugin_that_fails_to_import_is_named_and_the_rest_works(tmp_path):
    (tmp_path / "acme_typo.py").write_text("from spikenas import hookimpl\n\n@hookimpl\ndef spikenas_register_operation(registry):\n    pass\n")
    env = installed(tmp_path, broken="acme_missing_module", typo="acme_typo")
    values = ("0",)  # not "disable": the plugins are still tried (as with "false", "no" or empty)
    out, *tried, disabled, blocked = spikenas_plugins(
        tmp_path / "runs", env, {}, *({"SPIKENAS_DISABLE_PLUGIN_AUTOLOAD": value} for value in values),
        {"SPIKENAS_DISABLE_PLUGIN_AUTOLOAD": "1"}, {"SPIKENAS_BLOCK_PLUGINS": "broken, typo"})
    assert out.returncode == 0, out.stderr
    assert set(BUILTIN_LINES) <= set(out.stdout.splitlines())
    assert "plugin 'broken' is disabled: importing acme_missing_module raised ModuleNotFoundError" in out.stderr
    assert "plugin 'typo' is disabled: plugin 'typo' implements unknown hook 'spikenas_register_operation'" in out.stderr
    for value, run in zip(values, tried, strict=True):
        assert "plugin 'broken' is disabled" in run.stderr, value
    assert "disabled" not in disabled.stderr
    assert "disabled" not in blocked.stderr and set(BUILTIN_LINES) <= set(blocked.stdout.splitlines())


# -- registry errors -----------------------------------------------------------------------------
class DuplicateConv:
    @hookimpl
    def spikenas_register_operations(self, registry):
        registry.add("conv3x3", lambda channels, neuron: torch.nn.Identity())


class Raising:
    @hookimpl
    def spikenas_register_cost_models(self, registry):
        raise RuntimeError("flash chip not found")


class Misspelled:
    @hookimpl
    def spikenas_register_operation(self, registry):  # missing the final "s"
        registry.add("never", lambda channels, neuron: torch.nn.Identity())


class WrongArgument:
    @hookimpl
    def spikenas_register_scores(self, reg):
        pass


def one_line(info: pytest.ExceptionInfo) -> str:
    message = str(info.value)
    assert "\n" not in message, message
    return message


def disabled_warning(record) -> str:
    """The one PluginDisabledWarning's message (one line)."""
    messages = [str(w.message) for w in record if issubclass(w.category, PluginDisabledWarning)]
    assert len(messages) == 1 and "\n" not in messages[0], messages
    return messages[0]


def test_a_plugin_taking_a_built_in_name_is_disabled_naming_both():
    with temporary_plugin(DuplicateConv(), name="acme-ops"):
        with pytest.warns(PluginDisabledWarning) as record:
            registries = get_registries()
        message = disabled_warning(record)
        assert "plugin 'acme-ops' is disabled" in message and "operation 'conv3x3'" in message
        assert "'spikenas.ops.builtin'" in message
        assert registries.operations.entry("conv3x3").plugin == "spikenas.ops.builtin"
    assert "conv3x3" in get_registries().operations


def test_duplicate_between_two_third_party_plugins_disables_the_one_called_later(dwsep):
    # pluggy calls the last registered plugin first: "clash" keeps the name, "dwsep" is disabled
    class Clash:
        @hookimpl
        def spikenas_register_cost_models(self, registry):
            registry.add("int8_state", lambda: None)

    with temporary_plugin(Clash(), name="clash"):
        with pytest.warns(PluginDisabledWarning) as record:
            registries = get_registries()
        message = disabled_warning(record)
        assert "plugin 'dwsep' is disabled" in message and "'clash'" in message
        assert registries.cost_models.entry("int8_state").plugin == "clash"
        assert "dwsep" not in registries.operations


def test_a_plugin_raising_while_registering_is_disabled_and_the_rest_works(tiny_macro, neuron):
    with temporary_plugin(Raising(), name="acme-flash"):
        with pytest.warns(PluginDisabledWarning) as record:
            registries = get_registries()
        message = disabled_warning(record)
        assert "'acme-flash'" in message and "RuntimeError: flash chip not found" in message and "cost_model" in message
        with pytest.raises(SpikenasError) as info:
            registries.cost_models.get("flash")
        assert "plugin 'acme-flash' is disabled (raised while registering cost_models" in one_line(info)
        # built-ins are untouched: a network of built-in operations still builds and runs
        genotype = Genotype.from_yaml("cells: [{nodes: 3, edges: [[conv3x3, 0, 1], [skip, 1, 2], [skip, 0, 2]]}]")
        SpikingNetwork(genotype, tiny_macro, neuron)(torch.zeros(2, *tiny_macro.input_shape))


def test_bad_registration_disables_the_plugin_naming_it():
    class BadName:
        @hookimpl
        def spikenas_register_operations(self, registry):
            registry.add("fine", lambda channels, neuron: None)
            registry.add("conv-3x3", lambda channels, neuron: None)

    with temporary_plugin(BadName(), name="dashes"):
        with pytest.warns(PluginDisabledWarning, match="plugin 'dashes' registered operation name 'conv-3x3'"):
            registries = get_registries()
        assert "fine" not in registries.operations  # nothing of a disabled plugin stays


def test_misspelled_hook_fails_at_check_pending():
    with pytest.raises(SpikenasError) as info:
        with temporary_plugin(Misspelled(), name="typo-plugin"):
            pass
    message = one_line(info)
    assert "'typo-plugin'" in message and "'spikenas_register_operation'" in message
    assert "spikenas_register_operations" in message  # the known hooks are listed
    assert "never" not in get_registries().operations


def test_wrong_hook_argument_is_one_line():
    with pytest.raises(SpikenasError) as info:
        with temporary_plugin(WrongArgument(), name="argplug"):
            pass
    message = one_line(info)
    assert "'argplug'" in message and "'reg'" in message


def test_unknown_name_lists_known(registries):
    with pytest.raises(SpikenasError, match=r"unknown operation 'dwsep3x3'; known: avgpool, conv1x1"):
        registries.operations.get("dwsep3x3")


# -- a plugin's items are checked where they are first used, naming the plugin ------------------
class _Shrink:
    @hookimpl
    def spikenas_register_operations(self, registry):
        registry.add("shrink", lambda channels, neuron: SpikingSequential(nn.AvgPool2d(2)))
        registry.add("explode", _explode)
        registry.add("sneaky", lambda channels, neuron: _MetaOnly())


class _MetaOnly(nn.Module):
    """Keeps the shape on the meta device only (where spikenas checks it)."""

    def forward(self, x):
        return x if x.is_meta else x[..., :1]


def _explode(channels, neuron):
    raise RuntimeError("needs a GPU")


class _BadCost:
    @hookimpl
    def spikenas_register_cost_models(self, registry):
        registry.add("negative", lambda: lambda profile: MemoryReport("negative", -5, 0, 0, ()))
        registry.add("raising", lambda: _raise_cost)
        registry.add("dict", lambda: lambda profile: {"bytes": 3})


def _raise_cost(profile):
    raise ZeroDivisionError("division by zero")


@pytest.mark.parametrize("op, message", [
    ("shrink", "operation 'shrink' (plugin 'acme-ops') turns a [T, B, C, H, W] = [1, 1, 4, 8, 8] input into "
               "(1, 1, 4, 4, 4); an operation must keep the shape"),
    ("explode", "operation 'explode' (plugin 'acme-ops') failed on a [T, B, C, H, W] = [1, 1, 4, 8, 8] input: "
                "RuntimeError: needs a GPU"),
    ("sneaky", "operation 'sneaky' (plugin 'acme-ops') keeps the shape on the meta device but turns a real "
               "[T, B, C, H, W] = [1, 1, 4, 8, 8] input into (1, 1, 4, 8, 1); an operation must keep the shape"),
])
def test_an_operation_breaking_its_contract_is_named_before_anything_runs(tiny_macro, neuron, op, message):
    images = torch.zeros(4, *tiny_macro.input_shape)
    with temporary_plugin(_Shrink(), name="acme-ops"):
        with pytest.raises(SpikenasError) as info:
            build_context(tiny_macro, neuron, SearchSpaceConfig(operations=["zero", "skip", op]), [images])
    assert one_line(info) == message


@pytest.mark.parametrize("model, message", [
    ("negative", "cost model 'negative' (plugin 'acme-cost') returned total_bytes=-5; bytes must be integers >= 0"),
    ("raising", "cost model 'raising' (plugin 'acme-cost') raised ZeroDivisionError: division by zero"),
    ("dict", "cost model 'dict' (plugin 'acme-cost') returned a dict, not a spikenas.cost.MemoryReport"),
])
def test_a_cost_model_returning_nonsense_is_named(tiny_macro, neuron, model, message):
    images = torch.zeros(4, *tiny_macro.input_shape)
    with temporary_plugin(_BadCost(), name="acme-cost"):
        with pytest.raises(SpikenasError) as info:
            build_context(tiny_macro, neuron, SearchSpaceConfig(), [images], budget="1MiB", cost_model=model)
    assert one_line(info) == message


def test_registration_hooks_honour_pluggy_wrappers_and_trylast():
    """Hooks go through pluggy: a ``trylast`` implementation sees every other plugin's items,
    and a ``wrapper`` runs around all of them."""
    seen = {}

    class Last:
        @hookimpl(trylast=True)
        def spikenas_register_operations(self, registry):
            seen["before_last"] = registry.names()
            registry.add("late_skip", lambda channels, neuron: nn.Identity(), connects=True)

    class Trim:
        @hookimpl(wrapper=True)
        def spikenas_register_operations(self, registry):
            seen["before_wrapped"] = registry.names()
            result = yield
            seen["after_wrapped"] = registry.names()
            return result

    with temporary_plugin(Last(), name="last"), temporary_plugin(Trim(), name="trim"):
        operations = get_registries().operations
        assert {"zero", "skip", "conv3x3"} <= set(seen["before_last"]) and "late_skip" not in seen["before_last"]
        assert operations.entry("late_skip").plugin == "last"
        assert seen["before_wrapped"] == [] and seen["after_wrapped"] == operations.names()


def test_a_raising_hook_wrapper_is_one_line_naming_it():
    class Broken:
        @hookimpl(wrapper=True)
        def spikenas_register_scores(self, registry):
            yield
            raise RuntimeError("no scores today")

    with temporary_plugin(Broken(), name="broken-wrapper"):
        with pytest.raises(SpikenasError, match=r"hook wrapper of spikenas_register_scores \(plugin 'broken-wrapper'\) raised RuntimeError: no scores today"):
            get_registries()
