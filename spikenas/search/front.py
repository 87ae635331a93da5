"""``spikenas front``: the accuracy-vs-memory front, one search per budget.

For each budget the search (``search``: the settings of ``spikenas search``, nested) runs into a
run directory of its own, as ``spikenas search --budget B`` would, and the front's run directory
gets ``front.csv`` (per budget: the chosen network's bytes, precision, macro and cells, its
short-training validation accuracy, its ``final.yaml`` and, with ``full_training``, its test
accuracy after ``spikenas fit``) and ``front.png`` (accuracy against bytes, log axis, each point
labelled). A stopped front resumes: budgets it finished are read from its sealed state, the
budget under way resumes its own search.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path
from typing import Any, Callable, Optional

import lightning.pytorch as pl

from spikenas.base.errors import SpikenasError
from spikenas.base.files import atomic_write, output_set, write_figure
from spikenas.base.rundir import (DamagedState, claim_run_dir, logs_root, read_state, run_lock, set_aside, settings_key,
                                  write_state)
from spikenas.base.units import parse_bytes
from spikenas.search.driver import run_search
from spikenas.search.result import SearchResult
from spikenas.search.settings import SearchSettings

COLUMNS = ("budget", "budget_bytes", "bytes", "weight_bits", "cells", "timesteps", "channels", "head_hidden",
           "head_pool", "params", "short_val_acc", "test_acc", "final_yaml")

FitAndTest = Callable[[Path, Path], float]


def _row(budget: str, limit: int, result: SearchResult, bits: int) -> dict[str, Any]:
    """The front's row for a finished search (``bits``: the precision when the search did not choose one)."""
    macro = result.macro
    trained = result.weight_bits is not None  # chosen by short trainings: its score is their accuracy
    return {"budget": budget, "budget_bytes": limit, "bytes": result.bytes,
            "weight_bits": result.weight_bits or bits,
            "cells": len(result.genotype.cells), "timesteps": macro.timesteps, "channels": macro.channels,
            "head_hidden": macro.head_hidden, "head_pool": macro.head_pool,
            "params": sum(layer.params for layer in result.report.layers),
            "short_val_acc": f"{result.score:.4f}" if trained else "", "test_acc": "",
            "final_yaml": str(result.run_dir / "final.yaml")}


def run_front(trainer: pl.Trainer, model: pl.LightningModule, datamodule: pl.LightningDataModule, config: dict[str, Any],
              search: SearchSettings | dict, budgets: list[str], full_training: bool = False,
              fit_and_test: Optional[FitAndTest] = None) -> list[dict[str, Any]]:
    """Search every budget (smallest first) and write the front; its rows. ``fit_and_test(final_yaml,
    directory)`` trains a point with the full recipe and returns its test accuracy (``full_training``)."""
    if not budgets:
        raise SpikenasError("front needs budgets, e.g. --budgets \"[16KiB, 64KiB, 256KiB]\"")
    limits = {}
    for budget in budgets:
        limit = parse_bytes(budget, "budgets") if not isinstance(budget, dict) else None
        if limit is None:
            raise SpikenasError(f"front budgets are sizes (bytes or units like 64KiB), got {budget!r}")
        limits[str(budget)] = limit
    order = sorted(limits, key=limits.get)
    search = SearchSettings.of(**search) if isinstance(search, dict) else search
    search.check()
    root = logs_root(trainer)
    key = settings_key({"search": {k: v for k, v in search.as_dict().items() if k != "budget"}, "budgets": order,
                        "full_training": full_training, "macro": model.macro.to_dict(),
                        "data": dict(getattr(datamodule, "hparams", {}))})
    state_path = root / ".front_state" / f"{key}.json"
    owner = f"front:{key}"
    with run_lock(state_path, "front"):
        try:
            state = read_state(state_path, root, owner)
        except DamagedState as exc:
            set_aside(state_path, "front", exc)
            state = None
        if state is None or state["complete"]:
            state = {"complete": False, "run_dir": str(claim_run_dir(trainer, root, owner)), "points": {}}
            write_state(state_path, state)
        else:
            print(f"spikenas front: resuming from {state_path} ({len(state['points'])} of {len(order)} budgets done)")
        run_dir = Path(state["run_dir"])
        base = {k: v for k, v in config.items() if k not in ("search", "budgets", "full_training")}
        base.update(cost_model=search.cost_model, cost_options=search.cost_options, export_target=search.export_target)
        rows = []
        for budget in order:
            point = state["points"].get(budget)
            if point is None:
                print(f"spikenas front: budget {budget} ({limits[budget]:,} bytes)")
                result = run_search(trainer, model, datamodule, base, dataclasses.replace(search, budget=budget))
                point = {"row": _row(budget, limits[budget], result, (search.cost_options or {}).get("weight_bits", 32))}
                if full_training:
                    point["row"]["test_acc"] = f"{fit_and_test(result.run_dir / 'final.yaml', result.run_dir / 'full'):.4f}"
                state["points"][budget] = point
                write_state(state_path, state)
            rows.append(point["row"])
        write_front(rows, run_dir)
        state["complete"] = True
        write_state(state_path, state)
    print(f"spikenas front: wrote {run_dir}/{{front.csv,front.png}}")
    for row in rows:
        accuracy = row["test_acc"] or row["short_val_acc"] or "-"
        print(f"spikenas front: budget={row['budget']} bytes={row['bytes']} bits={row['weight_bits']} cells={row['cells']} "
              f"T={row['timesteps']} channels={row['channels']} accuracy={accuracy}")
    return rows


def write_front(rows: list[dict[str, Any]], run_dir: Path) -> None:
    """``front.csv`` and ``front.png`` as a set."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with output_set(run_dir) as staging:
        atomic_write(staging / "front.csv", buffer.getvalue())
        write_front_plot(rows, staging / "front.png")


def write_front_plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Accuracy against bytes (log axis), each point labelled with its budget, bits, cells and T."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.add_subplot()
    for column, marker, label in (("short_val_acc", "o", "short training (validation)"),
                                  ("test_acc", "s", "full recipe (test)")):
        points = [(float(r["bytes"]), float(r[column]), r) for r in rows if r[column] not in ("", None) and r["bytes"] != ""]
        if not points:
            continue
        xs, ys, labelled = zip(*points)
        ax.plot(xs, ys, marker=marker, label=label)
        for x, y, r in points:
            ax.annotate(f"{r['budget']}: {r['weight_bits']}b {r['cells']}c T{r['timesteps']} C{r['channels']}", (x, y),
                        fontsize=6, xytext=(3, -9), textcoords="offset points")
    for r in rows:
        ax.axvline(r["budget_bytes"], color="grey", linewidth=0.5, linestyle=":")
    ax.set_xscale("log")
    ax.set_xlabel("memory footprint (bytes, log scale; dotted: the budgets)")
    ax.set_ylabel("accuracy")
    ax.set_title("spikenas front: the best network per memory budget")
    if ax.lines:
        ax.legend(fontsize=7, loc="lower right")
    budgets = {r["budget_bytes"]: r["budget"] for r in rows}
    ax.set_xticks(sorted(budgets), [budgets[b] for b in sorted(budgets)], fontsize=7)
    ax.set_xticks([], minor=True)  # the log axis's own minor labels would overlap the budgets'
    ax.margins(x=0.12)  # room for the last point's label
    write_figure(path, fig)
