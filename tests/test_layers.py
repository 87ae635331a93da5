"""The package's layers: space (data) -> network (modules) -> search -> lit -> cli, never back up."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from conftest import ROOT

LAYERS = ("space", "network", "search", "lit", "cli")


def imports(path) -> list[str]:
    """Every module ``path`` imports (absolute names), at any depth of the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_no_layer_imports_a_layer_above_it(layer):
    package = ROOT / "spikenas"
    files = [package / f"{layer}.py"] if (package / f"{layer}.py").exists() else sorted((package / layer).rglob("*.py"))
    above = {f"spikenas.{name}" for name in LAYERS[LAYERS.index(layer) + 1:]}
    wrong = [(f.name, module) for f in files for module in imports(f)
             if any(module == a or module.startswith(a + ".") for a in above)]
    assert not wrong, f"{layer} imports layers above it: {wrong}"


def test_the_space_is_data_without_torch_modules():
    code = ("import sys, spikenas.space; "
            "print(sorted(m for m in sys.modules if m.startswith(('torch.nn', 'spikenas.network', 'spikenas.ops'))))")
    files = sorted((ROOT / "spikenas" / "space").rglob("*.py"))
    assert not [(f.name, m) for f in files for m in imports(f) if m.split(".")[0] == "torch"]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert "spikenas.network" not in out.stdout and "spikenas.ops" not in out.stdout
