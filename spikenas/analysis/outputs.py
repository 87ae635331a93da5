"""What a finished analysis leaves in its run directory, next to ``networks.csv``.

``impact.csv``/``.png`` (one row per operation), ``cells.csv``/``.png`` (one row per cell
count), ``correlation.csv``/``.png`` (one row per score and accuracy), ``baseline.csv``/``.png``
(one row per accuracy: the found network against the random ones), ``enhanced_space.yaml`` (a
search-config fragment) and ``report.md`` (all of it, with the command). Every file is written
atomically; a study that did not run leaves no file.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from spikenas.analysis import plots
from spikenas.analysis.networks import TrainedNetwork
from spikenas.analysis.ranking import CorrelationRow, best_baseline, ceiling, correlation_table
from spikenas.analysis.tables import BaselineRow, CellsRow, ImpactRow, baseline_table, cells_table, enhanced_space, impact_table
from spikenas.base.files import atomic_write


@dataclass(frozen=True)
class AnalysisTables:
    impact: list[ImpactRow]
    cells: list[CellsRow]
    correlation: list[CorrelationRow]
    baseline: list[BaselineRow]
    enhanced: dict[str, Any]


def _f(value: float, digits: int = 4) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write(path, buffer.getvalue())


def compute_tables(rows: list[TrainedNetwork], plan: Any, studies: Any, operations: list[str], connecting: set[str],
                   score_names: list[str], default_cells: int) -> AnalysisTables:
    impact = impact_table(rows, operations, connecting, studies.keep_threshold) if "impact" in studies.run else []
    cells = cells_table(rows, plan.searches, studies.cells_tolerance) if "cells" in studies.run else []
    correlation = correlation_table(rows, score_names) if "correlation" in studies.run else []
    baseline = baseline_table(rows) if "baseline" in studies.run else []
    return AnalysisTables(impact, cells, correlation, baseline, enhanced_space(impact, cells, operations, default_cells))


def write_tables(run_dir: Path, tables: AnalysisTables, rows: list[TrainedNetwork], score_names: list[str],
                 shown_as: Path | None = None) -> None:
    """The tables and figures into ``run_dir`` (``shown_as``: the run directory the files
    will end up in, named in ``enhanced_space.yaml``'s command; default ``run_dir``)."""
    if tables.impact:
        write_csv(run_dir / "impact.csv", [
            "operation", "connects", "kept", "impact_val", "impact_test", "full_val_mean", "full_test_mean",
            "without_runs", "without_val_mean", "without_val_std", "without_test_mean", "without_test_std",
            "only_runs", "only_val_mean", "only_val_std", "only_test_mean", "only_test_std",
        ], [[r.operation, r.connects, r.kept, _f(r.impact_val), _f(r.impact_test), _f(r.full_val.mean), _f(r.full_test.mean),
             r.without_val.n, _f(r.without_val.mean), _f(r.without_val.std), _f(r.without_test.mean), _f(r.without_test.std),
             r.only_val.n, _f(r.only_val.mean), _f(r.only_val.std), _f(r.only_test.mean), _f(r.only_test.std)]
            for r in tables.impact])
        plots.impact_figure(tables.impact, run_dir / "impact.png")
    if tables.cells:
        write_csv(run_dir / "cells.csv", [
            "cells", "chosen", "hash", "genotype", "bytes", "search_seconds", "search_candidates", "score",
            "runs", "val_mean", "val_std", "test_mean", "test_std",
        ], [[r.cells, r.chosen, r.hash, r.genotype, r.bytes, f"{r.search_seconds:.3f}", r.search_candidates, repr(r.score),
             r.val.n, _f(r.val.mean), _f(r.val.std), _f(r.test.mean), _f(r.test.std)] for r in tables.cells])
        plots.cells_figure(tables.cells, run_dir / "cells.png")
    if tables.correlation:
        write_csv(run_dir / "correlation.csv", [
            "score", "role", "accuracy", "networks", "kendall_tau", "tau_low", "tau_high", "kendall_p", "spearman_rho",
            "versus", "margin_low", "margin_high", "verdict",
        ], [[r.score, r.role, r.accuracy, r.networks, _f(r.kendall_tau, 6), _f(r.tau_low, 6), _f(r.tau_high, 6),
             _f(r.kendall_p, 6), _f(r.spearman_rho, 6), r.versus or "", _f(r.margin_low, 6), _f(r.margin_high, 6), r.verdict]
            for r in tables.correlation])
        plots.correlation_figure(rows, tables.correlation, score_names, run_dir / "correlation.png")
    if tables.baseline:
        write_csv(run_dir / "baseline.csv", [
            "accuracy", "found_hash", "found_bytes", "found_acc", "random_networks", "random_mean", "random_std",
            "random_best", "percentile", "gap_mean", "gap_best",
        ], [[r.accuracy, r.found_hash, r.found_bytes, _f(r.found_acc), r.random.n, _f(r.random.mean), _f(r.random.std),
             _f(r.random_best), _f(r.percentile, 1), _f(r.gap_mean), _f(r.gap_best)] for r in tables.baseline])
        plots.baseline_figure(rows, tables.baseline, run_dir / "baseline.png")
    fragment = yaml.safe_dump({"space": tables.enhanced}, default_flow_style=None, sort_keys=False)
    atomic_write(run_dir / "enhanced_space.yaml", (
        "# The enhanced search space chosen by spikenas analyze (rule: docs/analysis.md).\n"
        f"# spikenas search --config configs/search.yaml --config {(shown_as or run_dir) / 'enhanced_space.yaml'}\n" + fragment
    ))


def summary_line(tables: AnalysisTables, networks: int, seconds: float, score: str) -> str:
    """``tau=.. spearman=.. best_baseline=.. best_baseline_tau=.. ceiling=.. networks=..
    found_percentile=.. enhanced_ops=.. enhanced_cells=.. seconds=..`` (on test accuracy:
    ``score``'s correlation, the best size baseline's and the noise ceiling; ``nan`` where a
    study did not run or one seed was trained)."""
    corr = [r for r in tables.correlation if r.score == score and r.role == "score" and r.accuracy == "test"]
    base = [r for r in tables.baseline if r.accuracy == "test"]
    best, noise = best_baseline(tables.correlation), ceiling(tables.correlation)
    tau = corr[0].kendall_tau if corr else math.nan
    rho = corr[0].spearman_rho if corr else math.nan
    percentile = base[0].percentile if base else math.nan
    return (f"tau={tau:.3f} spearman={rho:.3f} best_baseline={best.score if best else 'none'} "
            f"best_baseline_tau={best.kendall_tau if best else math.nan:.3f} ceiling={noise.kendall_tau if noise else math.nan:.3f} "
            f"networks={networks} found_percentile={percentile:.1f} "
            f"enhanced_ops={','.join(tables.enhanced['operations'])} enhanced_cells={tables.enhanced['cells']} "
            f"seconds={seconds:.0f}")
