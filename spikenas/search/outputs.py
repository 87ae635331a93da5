"""What a finished search leaves in its run directory.

``genotype.yaml`` (the found cells), ``final.yaml`` (a complete ``spikenas fit`` config),
``search.csv`` (every scored candidate), ``memory.txt`` (the per-layer memory report) and
``pareto.png`` (score against memory of every candidate, the chosen one marked, the budget
drawn). They are written as a set (:func:`~spikenas.base.files.output_set`): all or none.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from spikenas.base.files import atomic_write, output_set, write_figure
from spikenas.search.records import RecordLog
from spikenas.search.result import SearchResult
from spikenas.search.settings import SearchSettings
from spikenas.space.genotype import GenotypeError

SEARCH_ONLY_KEYS = (*SearchSettings.names(), "config")


def fit_config(result: SearchResult, search_config: dict[str, Any], weight_bits: int | None = None) -> dict[str, Any]:
    """The ``spikenas fit`` config: the search's config with the found genotype and macro
    (less ``num_classes`` and ``input_shape``, which the CLI takes from the data), and the
    budget (bytes under the cost model, and the SynOps limit if any), cost model and weight
    quantisation the network was searched for: a cost model
    counting ``weight_bits < 32`` (``memory`` with ``weight_bits: 8``) makes the network train
    at that precision (``model.quantization``), so the trained network is the budgeted one."""
    config = {k: v for k, v in search_config.items() if k not in SEARCH_ONLY_KEYS}
    model = dict(config.get("model") or {})
    model["budget"] = result.budget
    model["cost_model"] = search_config.get("cost_model") or "memory"
    model["cost_options"] = dict(result.cost_options if result.cost_options is not None else search_config.get("cost_options") or {})
    model["synops_limit"] = result.synops_limit
    model["export_target"] = search_config.get("export_target")
    quantization = dict(model.get("quantization") or {})
    if result.weight_bits is not None:  # the precision the search chose, trained as costed
        quantization["weight_bits"] = result.weight_bits if result.weight_bits < 32 else None
    elif weight_bits is not None and not quantization.get("weight_bits"):
        quantization["weight_bits"] = weight_bits if weight_bits < 32 else None
    model["quantization"] = {"weight_bits": quantization.get("weight_bits"), "per_channel": quantization.get("per_channel", True)}
    model["genotype"] = result.genotype.to_dict()
    macro = {**(model.get("macro") or {}), **result.macro.to_dict()}
    for linked in ("num_classes", "input_shape"):  # set from the data at instantiation
        macro.pop(linked, None)
    model["macro"] = macro
    config["model"] = model
    return config


def write_outputs(result: SearchResult, log: RecordLog, run_dir: Path, search_config: dict[str, Any],
                  weight_bits: int | None = None, synops: str = "") -> None:
    """Every output of a finished search, as a set: all five files appear in ``run_dir`` or
    none does (``weight_bits``: what its cost model counts per weight, if it says; ``synops``:
    the found network's SynOps table, appended to ``memory.txt``)."""
    header = f"# found by spikenas search ({result.strategy}); score {result.score:.6g}, {result.bytes:,} bytes\n"
    try:
        header += "# as SNASNet's cnt_mat: " + "; ".join(f"cell {i}: {c.to_cnt_mat()}" for i, c in enumerate(result.genotype.cells)) + "\n"
    except GenotypeError:  # an operation SNASNet does not have
        pass
    final = yaml.safe_dump(fit_config(result, search_config, weight_bits), sort_keys=False, default_flow_style=None)
    with output_set(run_dir) as staging:
        atomic_write(staging / "genotype.yaml", header + result.genotype.to_yaml())
        atomic_write(staging / "final.yaml", f"# spikenas fit --config {run_dir / 'final.yaml'}\n" + final)
        atomic_write(staging / "memory.txt", result.report.format() + "\n" + (f"\n{synops}\n" if synops else ""))
        log.write_csv(staging / "search.csv")
        write_pareto(result, log, staging / "pareto.png")


def write_pareto(result: SearchResult, log: RecordLog, path: Path) -> None:
    """Score against bytes of every scored candidate, coloured by stage."""
    from matplotlib.figure import Figure  # the object API: no pyplot state, no backend switch

    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.add_subplot()
    stages = list(dict.fromkeys(r.stage for r in log.records if r.stage != "final"))
    for stage in stages:
        points = [(r.bytes, r.score) for r in log.records if r.stage == stage and math.isfinite(r.score)]
        if points:
            xs, ys = zip(*points)
            ax.scatter(xs, ys, s=10, alpha=0.6, label=f"{stage} ({len(points)})")
    ax.scatter([result.bytes], [result.score], marker="*", s=220, color="black", zorder=5, label="chosen")
    if result.budget is not None:
        ax.axvline(result.budget, color="red", linestyle="--", label=f"budget {result.budget:,} B")
    ax.set_xlabel("memory footprint (bytes)")
    ax.set_ylabel(f"{result.score_name} score")
    ax.set_title(f"spikenas search ({result.strategy}): {len(log.records)} candidates")
    ax.legend(fontsize=7, loc="lower right")
    write_figure(path, fig)
