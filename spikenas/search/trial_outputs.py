"""What a search that chose by trials leaves in its run directory.

``genotype.yaml`` and ``final.yaml`` (the chosen network, its precision trained in),
``memory.txt`` (its per-layer memory report), ``candidates.csv`` (every network stage one
found: its group, macro, bytes, parameters, training-free score and whether the filter kept
it), ``trials.csv`` (each kept candidate's trial: state, validation accuracy at every rung it reached,
seconds, why it failed) and ``trials.png`` (each trial's last validation accuracy against its
bytes, the chosen one marked). Written as a set (:func:`~spikenas.base.files.output_set`).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Sequence

import yaml

from spikenas.base.files import atomic_write, output_set, write_figure
from spikenas.search.candidates import Candidate
from spikenas.search.outputs import fit_config
from spikenas.search.result import SearchResult
from spikenas.search.trials import TrialRow

FILES = ("genotype.yaml", "final.yaml", "memory.txt", "candidates.csv", "trials.csv", "trials.png")


def _csv(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def candidates_csv(found: Sequence[Candidate], kept: Sequence[Candidate]) -> str:
    keys = {c.key for c in kept}
    rows = [["key", "weight_bits", "cells", "timesteps", "channels", "head_hidden", "head_pool", "headroom", "bytes",
             "params", "score", "kept", "genotype"]]
    rows += [[c.key, c.weight_bits, c.cells, c.macro.timesteps, c.macro.channels, c.macro.head_hidden, c.macro.head_pool,
              c.headroom, c.bytes, c.params, repr(c.score), int(c.key in keys), str(c.genotype)] for c in found]
    return _csv(rows)


def trials_csv(table: Sequence[TrialRow], chosen: TrialRow) -> str:
    rows = [["key", "weight_bits", "cells", "timesteps", "channels", "bytes", "params", "state", "chunks", "val_acc",
             "val_acc_by_chunk", "seconds", "chosen", "note"]]
    rows += [[r.candidate.key, r.candidate.weight_bits, r.candidate.cells, r.candidate.macro.timesteps,
              r.candidate.macro.channels, r.candidate.bytes, r.candidate.params, r.state, r.chunks,
              "" if math.isnan(r.last) else f"{r.last:.4f}",
              " ".join(f"{step}:{a:.4f}" for step, a in zip(r.steps, r.accuracies)),
              f"{r.seconds:.1f}", int(r is chosen), r.note] for r in table]
    return _csv(rows)


def write_trial_outputs(result: SearchResult, found: Sequence[Candidate], table: Sequence[TrialRow], chosen: TrialRow,
                        run_dir: Path, search_config: dict[str, Any]) -> None:
    """Every output of a search that chose by trials, as a set (all or none appear in ``run_dir``)."""
    c = chosen.candidate
    header = (f"# chosen by short trainings ({result.strategy}): val_acc {chosen.last:.4f} after {chosen.chunks} chunks, "
              f"{c.weight_bits}-bit weights, T={c.macro.timesteps}, {result.bytes:,} bytes\n")
    final = yaml.safe_dump(fit_config(result, search_config), sort_keys=False, default_flow_style=None)
    with output_set(run_dir) as staging:
        atomic_write(staging / "genotype.yaml", header + result.genotype.to_yaml())
        atomic_write(staging / "final.yaml", f"# spikenas fit --config {run_dir / 'final.yaml'}\n" + final)
        atomic_write(staging / "memory.txt", result.report.format() + "\n")
        atomic_write(staging / "candidates.csv", candidates_csv(found, [r.candidate for r in table]))
        atomic_write(staging / "trials.csv", trials_csv(table, chosen))
        write_trials_plot(table, chosen, result.budget, staging / "trials.png")


def write_trials_plot(table: Sequence[TrialRow], chosen: TrialRow, budget: int | None, path: Path) -> None:
    """Each trial's last validation accuracy against its bytes, labelled, marker by state."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.add_subplot()
    for state, marker in (("COMPLETE", "o"), ("PRUNED", "x")):
        points = [r for r in table if r.state == state and r.accuracies]
        if points:
            ax.scatter([r.candidate.bytes for r in points], [r.last for r in points], marker=marker, label=state.lower())
    for r in table:
        if r.accuracies:
            ax.annotate(f"{r.candidate.weight_bits}b {r.candidate.cells}c T{r.candidate.macro.timesteps} "
                        f"({r.chunks})", (r.candidate.bytes, r.last), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.scatter([chosen.candidate.bytes], [chosen.last], marker="*", s=220, color="black", zorder=5, label="chosen")
    if budget is not None:
        ax.axvline(budget, color="red", linestyle="--", label=f"budget {budget:,} B")
    ax.set_xlabel("memory footprint (bytes)")
    ax.set_ylabel("validation accuracy after the chunks trained")
    ax.set_title("spikenas search: short trainings (label: bits, cells, T (chunks))")
    ax.legend(fontsize=7, loc="lower right")
    write_figure(path, fig)
