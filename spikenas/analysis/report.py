"""``report.md``: the analysis in one page (tables, figures, the chosen space, the command)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from spikenas.analysis.outputs import AnalysisTables
from spikenas.analysis.ranking import best_baseline, ceiling
from spikenas.base.files import atomic_write


def _pct(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _spread(s: Any) -> str:
    return "–" if not s.n else f"{100 * s.mean:.2f} ± {100 * s.std:.2f} (n={s.n})"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdicts(table: list) -> list[str]:
    """One plain sentence per score (test accuracy): does it beat the best size baseline beyond
    the bootstrap interval, and where the noise ceiling lies."""
    best, noise = best_baseline(table), ceiling(table)
    if best is None:
        return ["No size baseline could be ranked (fewer than three networks, or constant sizes)."]
    lines = [f"On test accuracy the best size baseline is **{best.score}** (τ {best.kendall_tau:.3f})"
             + (f"; the noise ceiling is τ {noise.kendall_tau:.3f} [{noise.tau_low:.3f}, {noise.tau_high:.3f}]."
                if noise else "; train two or more proxy seeds (proxy.seeds) to see the noise ceiling.")]
    words = {"beats": "ranks better than {b} beyond the interval", "loses": "ranks worse than {b} beyond the interval",
             "tie": "cannot be told apart from {b} (the interval of the difference spans 0)"}
    for r in table:
        if r.role in ("score", "combined") and r.accuracy == "test" and r.verdict:
            lines.append(f"- `{r.score}` (τ {r.kendall_tau:.3f}) {words[r.verdict].format(b=r.versus)}: "
                         f"Δτ in [{r.margin_low:+.3f}, {r.margin_high:+.3f}].")
    return lines


def write_report(path: Path, tables: AnalysisTables, context: dict[str, Any]) -> None:
    """``context``: ``command``, ``date``, ``networks``, ``runs``, ``seconds`` (this invocation),
    ``train_seconds`` (every training run's, resumed ones included), ``macro``,
    ``budget``, ``cost_model``, ``recipe`` (a ProxyRecipe), ``steps``, ``device``, ``score``, and
    ``run_dir`` (where the files end up; default ``path``'s directory)."""
    recipe = context["recipe"]
    parts = [
        "# spikenas analyze",
        "",
        f"Command: `{context['command']}`  ",
        f"Date: {context['date']}; device: {context['device']}; {context['networks']} networks, "
        f"{context['runs']} training runs taking {context['train_seconds']:.0f} s of training; "
        f"this invocation {context['seconds']:.0f} s (a resumed run trains only what was missing).",
        "",
        f"Budget: {context['budget']} under cost model `{context['cost_model']}`; macro (every study): "
        f"{context['macro']}.",
        f"Proxy recipe: {context['steps']} steps ({recipe.epochs} epoch(s) of {recipe.train_subset or 'all'} training "
        f"images, batch {context['batch_size']}), seeds {recipe.seeds}; validation {recipe.val_subset or 'all'} and "
        f"test {recipe.test_subset or 'all'} images. Accuracies are percentages, mean ± sample std over draws "
        "and seeds. The enhanced space is chosen on validation accuracy; test accuracy is only reported.",
        "",
    ]
    if tables.impact:
        parts += [
            "## Operation impact (SpikeNAS step 1)",
            "",
            "Impact = full space's mean validation accuracy − that of the space without the operation "
            "(positive: the operation helps).",
            "",
            _table(["operation", "kept", "impact (val)", "without: val", "without: test", "only: val", "only: test"],
                   [[r.operation, "yes" if r.kept else "no", _pct(r.impact_val), _spread(r.without_val), _spread(r.without_test),
                     _spread(r.only_val), _spread(r.only_test)] for r in tables.impact]),
            "",
            f"Full space: validation {_spread(tables.impact[0].full_val)}, test {_spread(tables.impact[0].full_test)}.",
            "",
            "![impact](impact.png)",
            "",
        ]
    if tables.cells:
        parts += [
            "## Cell count (SpikeNAS step 2)",
            "",
            _table(["cells", "chosen", "bytes", "search s", "candidates", "val", "test", "genotype"],
                   [[r.cells, "yes" if r.chosen else "", f"{r.bytes:,}", f"{r.search_seconds:.2f}", r.search_candidates,
                     _spread(r.val), _spread(r.test), f"`{r.genotype}`"] for r in tables.cells]),
            "",
            "![cells](cells.png)",
            "",
        ]
    if tables.correlation:
        parts += [
            "## Score validation",
            "",
            "Rank correlation with the trained accuracy of the random networks (one point per network, its "
            "mean over seeds) of each training-free score at initialisation, and of each size baseline "
            "(parameters, bytes, SynOps at initialisation, MACs, neurons): a score earns its place only by "
            "ranking better than counting does; `<score>+bytes` averages a score's rank with the bytes' rank. Brackets: 95% bootstrap intervals over networks. The noise "
            "ceiling is τ between two training seeds of the same networks: how well one proxy training ranks "
            "another, so no score can be expected to exceed it.",
            "",
            _table(["predictor", "role", "accuracy", "networks", "Kendall τ [95%]", "p", "Spearman ρ", "vs best baseline"],
                   [[r.score, r.role, r.accuracy, r.networks, f"{r.kendall_tau:.3f} [{r.tau_low:.3f}, {r.tau_high:.3f}]",
                     f"{r.kendall_p:.3g}", f"{r.spearman_rho:.3f}",
                     f"{r.verdict} {r.versus} (Δτ [{r.margin_low:+.3f}, {r.margin_high:+.3f}])" if r.verdict else ""]
                    for r in tables.correlation]),
            "",
            *verdicts(tables.correlation),
            "",
            "![correlation](correlation.png)",
            "",
        ]
    if tables.baseline:
        parts += [
            "## Found vs random",
            "",
            f"The network `{context['score']}`-guided `spikenas` search found, against random networks that fit "
            "the same budget, all trained with the same recipe.",
            "",
            _table(["accuracy", "found", "random mean ± std", "random best", "percentile", "gap to mean", "gap to best"],
                   [[r.accuracy, _pct(r.found_acc), _spread(r.random), _pct(r.random_best), f"{r.percentile:.1f}",
                     _pct(r.gap_mean), _pct(r.gap_best)] for r in tables.baseline]),
            "",
            "![baseline](baseline.png)",
            "",
        ]
    parts += [
        "## The enhanced space",
        "",
        "```yaml",
        yaml.safe_dump({"space": tables.enhanced}, default_flow_style=None, sort_keys=False).strip(),
        "```",
        "",
        "Search it: `spikenas search --config configs/search.yaml --config "
        f"{Path(context.get('run_dir', path.parent)) / 'enhanced_space.yaml'}`. Raw data: `networks.csv`.",
        "",
    ]
    atomic_write(path, "\n".join(parts))

