"""docs/plugins.md documents every hook of spikenas/plugin/hookspecs.py with its exact signature."""

from __future__ import annotations

import ast
import re

import pytest

from conftest import ROOT

HOOKSPECS = ROOT / "spikenas" / "plugin" / "hookspecs.py"
PLUGINS_MD = ROOT / "docs" / "plugins.md"


def hook_signatures() -> dict[str, str]:
    """``name -> "name(arg: Type, ...) -> Return"`` for every ``@hookspec`` function."""
    tree = ast.parse(HOOKSPECS.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
            ast.unparse(d).startswith("hookspec") for d in node.decorator_list
        ):
            returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
            out[node.name] = f"{node.name}({ast.unparse(node.args)}){returns}"
    return out


def test_hookspecs_found():
    hooks = hook_signatures()
    assert set(hooks) >= {"spikenas_register_operations", "spikenas_register_cost_models", "spikenas_register_scores"}
    assert all(name.startswith("spikenas_") for name in hooks)


@pytest.mark.parametrize("name", sorted(hook_signatures()))
def test_hook_documented_with_exact_signature(name):
    docs = PLUGINS_MD.read_text()
    signature = hook_signatures()[name]
    assert f"### `{signature}`" in docs, f"docs/plugins.md lacks a '### `{signature}`' section"


def test_docs_mention_no_unknown_hook():
    documented = set(re.findall(r"\bspikenas_register_\w+", PLUGINS_MD.read_text()))
    # the misspelling in the errors table is deliberate
    assert documented - set(hook_signatures()) == {"spikenas_register_operation"}
