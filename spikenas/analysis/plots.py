"""The analysis figures (matplotlib's object API: no global pyplot state), written atomically."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure

from spikenas.analysis.networks import TrainedNetwork
from spikenas.analysis.ranking import CorrelationRow
from spikenas.analysis.tables import BaselineRow, CellsRow, ImpactRow
from spikenas.base.files import write_figure


def impact_figure(table: list[ImpactRow], path: Path) -> None:
    """Per operation: mean validation accuracy (± std) without it and only with it, against
    the full space (band); kept operations in bold."""
    fig = Figure(figsize=(7, 0.6 * len(table) + 1.8))
    ax = fig.add_subplot()
    ys = range(len(table))
    for offset, label, spreads, colour in (
        (-0.18, "space without it", [r.without_val for r in table], "tab:red"),
        (0.18, "cells only using it", [r.only_val for r in table], "tab:blue"),
    ):
        shown = [(y + offset, s) for y, s in zip(ys, spreads) if s.n]
        if shown:
            ax.barh([y for y, _ in shown], [s.mean for _, s in shown], height=0.34, xerr=[s.std for _, s in shown],
                    color=colour, alpha=0.75, label=label, capsize=3)
    full = table[0].full_val if table else None
    if full is not None and full.n:
        ax.axvspan(full.mean - full.std, full.mean + full.std, color="grey", alpha=0.2)
        ax.axvline(full.mean, color="black", linestyle="--", label=f"full space ({full.n} runs)")
    ax.set_yticks(list(ys), [r.operation for r in table])
    for tick, row in zip(ax.get_yticklabels(), table):
        tick.set_fontweight("bold" if row.kept else "normal")
    measured = [s for r in table for s in (r.without_val, r.only_val, r.full_val) if s.n]
    if measured:  # zoom on the bars' ends: accuracies differ by points, not tens of points
        low = min(s.mean - s.std for s in measured)
        high = max(s.mean + s.std for s in measured)
        ax.set_xlim(max(0.0, low - 0.05), min(1.0, high + 0.03))
    ax.set_xlabel("validation accuracy (proxy training)")
    ax.set_title("operation impact (bold: kept in the enhanced space)")
    ax.legend(fontsize=7, loc="lower right")
    write_figure(path, fig)


def cells_figure(table: list[CellsRow], path: Path) -> None:
    """Accuracy of the found network per cell count (bars, ± std), its bytes (line)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    xs = [r.cells for r in table]
    ax.bar([x - 0.18 for x in xs], [r.val.mean for r in table], width=0.34, yerr=[r.val.std for r in table],
           label="validation", color="tab:blue", capsize=3)
    ax.bar([x + 0.18 for x in xs], [r.test.mean for r in table], width=0.34, yerr=[r.test.std for r in table],
           label="test", color="tab:green", capsize=3)
    low = min([r.test.mean for r in table] + [r.val.mean for r in table])
    ax.set_ylim(max(0.0, low - 0.1), 1.0)
    ax.set_xticks(xs, [f"{r.cells} cell{'s' if r.cells > 1 else ''}\n{r.search_seconds:.1f} s search" + (" *" if r.chosen else "") for r in table])
    ax.set_ylabel("accuracy (proxy training)")
    twin = ax.twinx()
    twin.plot(xs, [r.bytes / 1024 for r in table], color="black", marker="o", label="KiB")
    twin.set_ylabel("footprint (KiB)")
    ax.set_title("cell count (* chosen)")
    ax.legend(fontsize=7, loc="upper left")
    write_figure(path, fig)


def correlation_figure(rows: list[TrainedNetwork], table: list[CorrelationRow], score_names: list[str], path: Path) -> None:
    """One panel per score: score at initialisation against test accuracy, random networks
    (dots) and the found network (star)."""
    fig = Figure(figsize=(4.2 * len(score_names), 3.8))
    for i, name in enumerate(score_names):
        ax = fig.add_subplot(1, len(score_names), i + 1)
        for role, style in (("random", dict(s=14, alpha=0.7, label="random")), ("found", dict(s=160, marker="*", color="black", label="found"))):
            points = [(r.scores[name], r.test_acc) for r in rows if r.has(role) and math.isfinite(r.scores.get(name, math.nan))]
            if points:
                ax.scatter(*zip(*points), **style)
        stats = [c for c in table if c.score == name and c.accuracy == "test" and c.population == "random"]
        if stats:
            verdict = f", {stats[0].verdict} {stats[0].versus}" if stats[0].verdict else ""
            ax.set_title(f"{name}: tau={stats[0].kendall_tau:.3f} rho={stats[0].spearman_rho:.3f} (n={stats[0].networks}{verdict})", fontsize=9)
        ax.set_xlabel(f"{name} score at initialisation")
        ax.set_ylabel("test accuracy (proxy training)")
        ax.legend(fontsize=7)
    write_figure(path, fig)


def baseline_figure(rows: list[TrainedNetwork], table: list[BaselineRow], path: Path) -> None:
    """Test accuracies of the random networks (histogram) and the found network (line)."""
    fig = Figure(figsize=(6, 3.8))
    ax = fig.add_subplot()
    randoms = [r.test_acc for r in rows if r.has("random") and not r.has("found")]
    ax.hist(randoms, bins=min(20, max(5, len(randoms) // 2)), color="tab:grey", alpha=0.8, label=f"random ({len(randoms)} runs)")
    test = [b for b in table if b.accuracy == "test"]
    if test:
        ax.axvline(test[0].found_acc, color="tab:red", linewidth=2, label=f"found ({test[0].percentile:.0f}th percentile)")
        ax.set_title(f"found vs random within the budget: gap {100 * test[0].gap_mean:+.2f} points to the mean")
    ax.set_xlabel("test accuracy (proxy training)")
    ax.set_ylabel("networks")
    ax.legend(fontsize=7)
    write_figure(path, fig)
