"""``spikenas profile --config X.yaml``: how big a config's network is, without training or data.

For a fit config (``final.yaml``, ``configs/snasnet_cifar10.yaml``: ``model.genotype`` set) it
prints the per-layer table of ``memory.txt`` (parameters, neurons, bytes) under the config's
cost model, says whether the network fits its budget, and lists every convolution, linear and
LIF layer with its shapes, kernel, fan-in, fan-out and neurons (:mod:`spikenas.cost.hardware`). For a search config (no genotype) it
prints the macro the budget would fix, the footprint range of the space at that macro (its
cheapest and its costliest network) and the cheapest network's table. Several ``--config``
files merge as the CLI merges them (later keys win). The data are never loaded: the
datamodule's class gives the image shape and the classes.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from spikenas.app.configfile import read_config
from spikenas.cost.limits import parse_limits
from spikenas.base.errors import SpikenasError
from spikenas.cost.hardware import format_hardware, hardware_layers
from spikenas.network import SpikingNetwork
from spikenas.neuron import NeuronConfig
from spikenas.plugin import get_registries
from spikenas.space.config import SearchSpaceConfig
from spikenas.space.cell import CellSpace
from spikenas.space.genotype import Genotype
from spikenas.space.macro import MacroConfig
from spikenas.network.profile import Profiler
from spikenas.base.units import format_bytes, parse_count

USAGE = "usage: spikenas profile --config FILE.yaml [--config MORE.yaml ...]"


def merge(base: dict, update: dict) -> dict:
    """``update`` over ``base``, mappings merged key by key."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load(paths: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for path in paths:
        try:
            config = merge(config, read_config(path))
        except SpikenasError as exc:
            raise SpikenasError(f"profile: {exc}") from None
    return config


def data_shape(data: Any) -> tuple[int, tuple[int, int, int]]:
    """``(num_classes, input_shape)`` of the config's datamodule, built without loading data."""
    if not isinstance(data, dict) or "class_path" not in data:
        raise SpikenasError("profile: the config names no data (data.class_path): it sets the image shape and classes")
    path = str(data["class_path"])
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module or "spikenas.data"), name)
    except (ImportError, AttributeError):
        raise SpikenasError(f"profile: data class {path!r} not found") from None
    datamodule = cls(**(data.get("init_args") or {}))
    return int(datamodule.num_classes), tuple(datamodule.input_shape)


def profile_text(config: dict[str, Any]) -> str:
    model = config.get("model") or {}
    classes, shape = data_shape(config.get("data"))
    macro = MacroConfig(**{**(model.get("macro") or {}), "num_classes": classes, "input_shape": shape})
    neuron = NeuronConfig(**(model.get("neuron") or {}))
    registries = get_registries()
    cost_name = model.get("cost_model") or config.get("cost_model") or "memory"
    cost = registries.cost_models.create(cost_name, **(model.get("cost_options") or config.get("cost_options") or {}))
    limits = parse_limits(model.get("budget") if model.get("budget") is not None else config.get("budget"), cost_name)
    budget = limits.bytes
    synops_limit = model.get("synops_limit") if model.get("synops_limit") is not None else limits.synops
    if model.get("genotype"):
        genotype = Genotype.from_dict(model["genotype"])
        report = cost(Profiler(macro, neuron, registries.operations).profile(genotype))
        lines = [report.format()]
        if budget is not None:
            verdict = "fits" if report.total_bytes <= budget else f"exceeds it by {report.total_bytes - budget:,} bytes"
            if getattr(report, "refusal", None) is not None:
                verdict += f", but does not run on the hardware of cost model {cost_name!r} (above)"
            lines.append(f"budget: {budget:,} bytes ({format_bytes(budget)}): the network {verdict}")
        if synops_limit is not None:
            lines.append(f"synops limit: {parse_count(synops_limit, 'synops_limit'):,.0f} SynOps per inference "
                         "(measured on spikes: the search's memory.txt, fit's val/synops)")
        with torch.device("meta"):
            network = SpikingNetwork(genotype, macro, neuron, registries.operations)
        lines += ["", "as hardware sees it (per sample and timestep):", format_hardware(hardware_layers(network, macro.input_shape))]
        return "\n".join(lines)
    text = _space_text(config, macro, neuron, registries, cost, budget)
    if synops_limit is not None:
        text += (f"\nsynops limit {parse_count(synops_limit, 'synops_limit'):,.0f} SynOps per inference: measured on the "
                 "scoring batch, it may narrow the macro further when the search runs")
    return text


def _space_text(config, macro, neuron, registries, cost, budget) -> str:
    from spikenas.search.context import MemoryCheck, choose_macro

    space = SearchSpaceConfig(**(config.get("space") or {})).check()
    cells = CellSpace(space.operations, registries.operations, space.nodes, space.backward, space.direct_edge)
    macro = choose_macro(macro, space, neuron, registries, cells, cost, budget)
    memory = MemoryCheck(macro, neuron, registries, cost, budget)
    cheapest = memory.cheapest(cells, space.cells)
    costliest = max(memory.bytes_of(g) for g in memory.largest(cells, space.cells))
    low = memory.bytes_of(cheapest)
    return "\n".join([
        "no genotype: a search config. The budget fixes the macro "
        f"channels={macro.channels} head_hidden={macro.head_hidden} head_pool={macro.head_pool} ({space.cells} cells)",
        f"footprints of the space at this macro: {low:,} bytes ({format_bytes(low)}, the cheapest network) to "
        f"{costliest:,} bytes ({format_bytes(costliest)}, every edge the costliest operation)"
        + ("" if budget is None else f"; budget {budget:,} bytes ({format_bytes(budget)})"),
        "the cheapest network:",
        cost(memory.profiler.profile(cheapest)).format(),
    ])


def main(argv: list[str]) -> str:
    """The text ``spikenas profile`` prints for ``argv`` (the arguments after ``profile``)."""
    paths = []
    args = list(argv)
    while args:
        flag = args.pop(0)
        if flag in ("-h", "--help"):
            return USAGE + "\n" + (__doc__ or "").split("\n\n")[1]
        if flag != "--config" or not args:
            raise SpikenasError(f"profile: unexpected argument {flag!r}; {USAGE}")
        paths.append(args.pop(0))
    if not paths:
        raise SpikenasError(f"profile needs a config; {USAGE}")
    return profile_text(load(paths))
