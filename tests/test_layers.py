"""The package's layers (``LAYER``), read from every import statement: no cycles between modules or
parts, each part above the parts it imports, search/ free of neuron models and operations, the
plugin layer at the bottom, few modules loose in the package root (docs/architecture.md)."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import ROOT

# Each part of the package and its layer: a part imports only parts of lower layers (its own
# modules aside). ``spikenas`` is the package's facade (``spikenas/__init__.py``).
LAYER = {
    "spikenas.base": 0,  # errors, units, atomic files, run directories, allocator
    "spikenas.plugin": 1, "spikenas.data": 1,
    "spikenas.neuron": 2, "spikenas.space": 2,
    "spikenas": 3, "spikenas.ops": 3, "spikenas.score": 3,
    "spikenas.cost": 4,
    "spikenas.network": 5,
    "spikenas.evaluate": 6, "spikenas.export": 6,
    "spikenas.train": 7,
    "spikenas.search": 8,  # a search that chooses by trials trains its candidates briefly
    "spikenas.analysis": 9,
    "spikenas.app": 10, "spikenas.__main__": 11,
    "spikenas.lit": 10,  # the names final.yaml files of spikenas 0.1 use (spikenas.lit.cosine)
}
MAX_ROOT_MODULES = 8


def imports(path) -> list[str]:
    """Every module ``path`` imports (absolute names), at any depth of the file:
    ``TYPE_CHECKING`` and function-local imports included, relative ones resolved."""
    package = ROOT / "spikenas"
    rel = path.relative_to(ROOT).with_suffix("")
    here = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - (node.level - 1)] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            found.extend(f"{name}.{a.name}" if (package.parent / f"{name}.{a.name}".replace(".", "/")).with_suffix(".py").exists()
                         or (package.parent / f"{name}.{a.name}".replace(".", "/")).is_dir() else name for a in node.names)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def module_graph() -> dict[str, set[str]]:
    """``{module: modules of spikenas it imports}`` over every file of the package."""
    package = ROOT / "spikenas"
    mods = {}
    for f in package.rglob("*.py"):
        rel = f.relative_to(ROOT).with_suffix("")
        mods[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = f
    graph = {}
    for name, f in mods.items():
        targets = set()
        for target in imports(f):
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("spikenas"):
                targets.add(target)
        graph[name] = targets
    return graph


def part(module: str) -> str:
    return ".".join(module.split(".")[:2])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_cycle_and_no_cycle_between_parts():
    graph = module_graph()
    parts: dict[str, set[str]] = {}
    for a, targets in graph.items():
        parts.setdefault(part(a), set()).update(part(b) for b in targets if part(b) != part(a))
    assert cycles(graph) == [] and cycles(parts) == []


def test_every_part_imports_only_lower_layers():
    graph = module_graph()
    unknown = sorted({part(m) for m in graph} - set(LAYER))
    assert not unknown, f"parts without a layer in tests/test_layers.py: {unknown}"
    wrong = sorted((a, b) for a, targets in graph.items() for b in targets
                   if part(a) != part(b) and LAYER[part(b)] >= LAYER[part(a)])
    assert not wrong, f"imports of a part at the same or a higher layer: {wrong}"


def test_search_knows_no_neuron_model_or_operation_and_plugin_layer_nothing_above():
    graph = module_graph()
    search_low = [(a, b) for a, targets in graph.items() if a.startswith("spikenas.search") for b in targets
                  if b.startswith(("spikenas.neuron", "spikenas.ops"))]
    plugin_up = [(a, b) for a, targets in graph.items() if a.startswith("spikenas.plugin") for b in targets
                 if part(b) not in ("spikenas.plugin", "spikenas.base")]
    assert search_low == [] and plugin_up == []


def test_few_modules_loose_in_the_package_root():
    root = [f.stem for f in (ROOT / "spikenas").glob("*.py") if f.name not in ("__init__.py", "__main__.py")]
    assert len(root) <= MAX_ROOT_MODULES, root


def test_the_space_is_data_without_torch_modules():
    code = ("import sys, spikenas.space; "
            "print(sorted(m for m in sys.modules if m.startswith(('torch.nn', 'spikenas.network', 'spikenas.ops'))))")
    files = sorted((ROOT / "spikenas" / "space").rglob("*.py"))
    assert not [(f.name, m) for f in files for m in imports(f) if m.split(".")[0] == "torch"]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert "spikenas.network" not in out.stdout and "spikenas.ops" not in out.stdout
