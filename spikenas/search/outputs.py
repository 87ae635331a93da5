"""What a finished search leaves in its run directory.

``genotype.yaml`` (the found cells), ``final.yaml`` (a complete ``spikenas fit`` config),
``search.csv`` (every scored candidate), ``memory.txt`` (the per-layer memory report) and
``pareto.png`` (score against memory of every candidate, the chosen one marked, the budget
drawn). Every file is written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from spikenas.files import atomic_write, write_figure
from spikenas.search.records import RecordLog
from spikenas.search.result import SearchResult

SEARCH_ONLY_KEYS = (
    "budget", "strategy", "space", "score", "score_options", "cost_model", "cost_options",
    "candidates", "sweeps", "last_sweeps", "rerank", "score_batch_size", "score_batches", "search_seed", "config",
)


def fit_config(result: SearchResult, search_config: dict[str, Any]) -> dict[str, Any]:
    """The ``spikenas fit`` config: the search's config with the found genotype and macro
    (less ``num_classes`` and ``input_shape``, which the CLI takes from the data)."""
    config = {k: v for k, v in search_config.items() if k not in SEARCH_ONLY_KEYS}
    model = dict(config.get("model") or {})
    model["genotype"] = result.genotype.to_dict()
    macro = {**(model.get("macro") or {}), **result.macro.to_dict()}
    for linked in ("num_classes", "input_shape"):  # set from the data at instantiation
        macro.pop(linked, None)
    model["macro"] = macro
    config["model"] = model
    return config


def write_outputs(result: SearchResult, log: RecordLog, run_dir: Path, search_config: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    header = f"# found by spikenas search ({result.strategy}); score {result.score:.6g}, {result.bytes:,} bytes\n"
    atomic_write(run_dir / "genotype.yaml", header + result.genotype.to_yaml())
    final = yaml.safe_dump(fit_config(result, search_config), sort_keys=False, default_flow_style=None)
    atomic_write(run_dir / "final.yaml", f"# spikenas fit --config {run_dir / 'final.yaml'}\n" + final)
    atomic_write(run_dir / "memory.txt", result.report.format() + "\n")
    log.write_csv(run_dir / "search.csv")
    write_pareto(result, log, run_dir / "pareto.png")


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
