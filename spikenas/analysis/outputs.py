"""What a finished analysis leaves in its run directory, next to ``networks.csv``.

``impact.csv``/``.png`` (one row per operation), ``cells.csv``/``.png`` (one row per cell
count), ``correlation.csv``/``.png`` (one row per population, predictor and accuracy),
``baseline.csv``/``.png`` (one row per accuracy: the found network against the random ones and
the size-matched ones), ``enhanced_space.yaml`` (a
search-config fragment) and ``report.md`` (all of it, with the command). Every file is written
atomically; a study that did not run leaves no file.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from spikenas.analysis import plots
from spikenas.analysis.networks import TrainedNetwork
from spikenas.analysis.ranking import CorrelationRow, correlation_table, reference_row, seed_row
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
    least = studies.stratum_least(plan.budget)
    correlation = correlation_table(rows, score_names, least) if "correlation" in studies.run else []
    baseline = baseline_table(rows, plan.budget, least) if "baseline" in studies.run else []
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
            "population", "score", "role", "accuracy", "networks", "kendall_tau", "tau_low", "tau_high", "kendall_p",
            "spearman_rho", "versus", "margin", "margin_low", "margin_high", "margin_p", "margin_p_holm", "verdict",
        ], [[r.population, r.score, r.role, r.accuracy, r.networks, _f(r.kendall_tau, 6), _f(r.tau_low, 6), _f(r.tau_high, 6),
             _f(r.kendall_p, 6), _f(r.spearman_rho, 6), r.versus or "", _f(r.margin, 6), _f(r.margin_low, 6),
             _f(r.margin_high, 6), _f(r.margin_p, 6), _f(r.margin_p_holm, 6), r.verdict]
            for r in tables.correlation])
        plots.correlation_figure(rows, tables.correlation, score_names, run_dir / "correlation.png")
    if tables.baseline:
        write_csv(run_dir / "baseline.csv", [
            "accuracy", "found_hash", "found_bytes", "found_acc", "random_networks", "random_mean", "random_std",
            "random_best", "percentile", "gap_mean", "gap_best", "found_fill", "matched_networks", "matched_mean",
            "matched_std", "matched_best", "matched_percentile",
        ], [[r.accuracy, r.found_hash, r.found_bytes, _f(r.found_acc), r.random.n, _f(r.random.mean), _f(r.random.std),
             _f(r.random_best), _f(r.percentile, 1), _f(r.gap_mean), _f(r.gap_best), _f(r.found_fill), r.matched.n,
             _f(r.matched.mean), _f(r.matched.std), _f(r.matched_best), _f(r.matched_percentile, 1)] for r in tables.baseline])
        plots.baseline_figure(rows, tables.baseline, run_dir / "baseline.png")
    fragment = yaml.safe_dump({"space": tables.enhanced}, default_flow_style=None, sort_keys=False)
    atomic_write(run_dir / "enhanced_space.yaml", (
        "# The enhanced search space chosen by spikenas analyze (rule: docs/analysis.md).\n"
        f"# spikenas search --config configs/search.yaml --config {(shown_as or run_dir) / 'enhanced_space.yaml'}\n" + fragment
    ))


def summary_line(tables: AnalysisTables, networks: int, seconds: float, score: str) -> str:
    """``tau=.. spearman=.. baseline=macs baseline_tau=.. verdict=.. ceiling=.. stratum_tau=..
    stratum_networks=.. networks=.. found_percentile=.. matched_percentile=.. enhanced_ops=..
    enhanced_cells=.. seconds=..``, on test accuracy: ``score``'s tau and rho over the random
    networks, the reference baseline's tau, ``score``'s Holm-corrected verdict against it, the
    ceiling of the seed-mean accuracy the scores are ranked against, ``score``'s tau over the
    stratum (the networks filling the budget) and how many networks it holds, the found network's
    percentile among the random networks and among the size-matched ones; ``nan`` (or ``none``)
    where a study did not run or one seed was trained."""
    def row(population: str) -> Optional[CorrelationRow]:
        return next((r for r in tables.correlation if r.score == score and r.role == "score" and r.accuracy == "test"
                     and r.population == population), None)

    mine, stratum = row("random"), row("stratum")
    base = [r for r in tables.baseline if r.accuracy == "test"]
    reference, ceiling = reference_row(tables.correlation), seed_row(tables.correlation, "ceiling")
    nan = math.nan
    return (f"tau={mine.kendall_tau if mine else nan:.3f} spearman={mine.spearman_rho if mine else nan:.3f} "
            f"baseline={reference.score if reference else 'none'} baseline_tau={reference.kendall_tau if reference else nan:.3f} "
            f"verdict={(mine.verdict if mine else '') or 'none'} ceiling={ceiling.kendall_tau if ceiling else nan:.3f} "
            f"stratum_tau={stratum.kendall_tau if stratum else nan:.3f} stratum_networks={stratum.networks if stratum else 0} "
            f"networks={networks} found_percentile={base[0].percentile if base else nan:.1f} "
            f"matched_percentile={base[0].matched_percentile if base else nan:.1f} "
            f"enhanced_ops={','.join(tables.enhanced['operations'])} enhanced_cells={tables.enhanced['cells']} "
            f"seconds={seconds:.0f}")
