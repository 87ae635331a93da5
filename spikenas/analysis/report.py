"""``report.md``: the analysis in one page (tables, figures, the chosen space, the command)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from spikenas.analysis.outputs import AnalysisTables
from spikenas.analysis.ranking import REFERENCE, reference_row, seed_row
from spikenas.base.files import atomic_write


def _pct(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _spread(s: Any) -> str:
    return "–" if not s.n else f"{100 * s.mean:.2f} ± {100 * s.std:.2f} (n={s.n})"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdicts(table: list, population: str = "random") -> list[str]:
    """Plain sentences on test accuracy over one population: the reference baseline, the
    ceiling and what it is about, and per compared predictor its Holm-corrected verdict."""
    reference = reference_row(table, population=population)
    if reference is None:
        return [f"The reference baseline `{REFERENCE}` could not be ranked here (fewer than three networks, or constant values)."]
    agreement, noise = seed_row(table, "agreement", population=population), seed_row(table, "ceiling", population=population)
    lines = [f"On test accuracy over these {reference.networks} networks, every score, `<score>+bytes` and SynOps at "
             f"initialisation is compared with `{REFERENCE}` (fixed in advance; τ {reference.kendall_tau:.3f})."]
    if noise is not None:
        lines.append(f"Noise ceiling: τ {noise.kendall_tau:.3f} [{noise.tau_low:.3f}, {noise.tau_high:.3f}] between the "
                     f"{noise.score.split('_')[2]}-seed mean accuracy the predictors are ranked against and the noise-free "
                     f"accuracy, from the seed-to-seed τ {agreement.kendall_tau:.3f} [{agreement.tau_low:.3f}, "
                     f"{agreement.tau_high:.3f}] by Spearman–Brown: what a perfect predictor would reach.")
    else:
        lines.append("Train two or more proxy seeds (proxy.seeds) to see the noise ceiling.")
    compared = [r for r in table if r.population == population and r.accuracy == "test" and r.verdict]
    words = {"beats": "ranks better than", "loses": "ranks worse than", "tie": "cannot be told apart from"}
    for r in compared:
        kind = "; an activity proxy: it depends on the data and the initialisation" if r.role == "activity" else ""
        lines.append(f"- `{r.score}` (τ {r.kendall_tau:.3f}{kind}) {words[r.verdict]} `{r.versus}`: Δτ {r.margin:+.3f} "
                     f"[{r.margin_low:+.3f}, {r.margin_high:+.3f}], p {r.margin_p:.3f}, Holm-adjusted p {r.margin_p_holm:.3f} "
                     f"({len(compared)} comparisons).")
    return lines


def _correlation_table(rows: list) -> str:
    return _table(["predictor", "role", "accuracy", "networks", "Kendall τ [95%]", "p", "Spearman ρ", f"vs {REFERENCE} (Holm)"],
                  [[r.score, r.role, r.accuracy, r.networks, f"{r.kendall_tau:.3f} [{r.tau_low:.3f}, {r.tau_high:.3f}]",
                    f"{r.kendall_p:.3g}", f"{r.spearman_rho:.3f}",
                    f"{r.verdict} (Δτ {r.margin:+.3f} [{r.margin_low:+.3f}, {r.margin_high:+.3f}], p_Holm {r.margin_p_holm:.3f})"
                    if r.verdict else ""] for r in rows])


def write_report(path: Path, tables: AnalysisTables, context: dict[str, Any]) -> None:
    """``context``: ``command``, ``date``, ``networks``, ``runs``, ``seconds`` (this invocation),
    ``train_seconds`` (every training run's, resumed ones included), ``macro``,
    ``budget``, ``cost_model``, ``recipe`` (a ProxyRecipe), ``steps``, ``device``, ``score``,
    ``stratum_fill`` (the share of the budget the stratum's networks fill), and
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
            "Rank correlation with the trained accuracy (one point per network, its mean over seeds) of each "
            "training-free score at initialisation, of the pure counts (`baseline`: parameters, bytes, MACs, neurons), "
            "of SynOps at initialisation (`activity`: spikes on the scoring batches, so it depends on the data and the "
            "initialisation) and of `<score>+bytes` (the mean of a score's rank and the bytes' rank). Every verdict is "
            f"against `{REFERENCE}`, chosen before any data, Holm–Bonferroni corrected over the comparisons of each "
            "table and accuracy. Brackets: 95% bootstrap intervals over networks. `agreement`: τ between two training "
            "seeds; `ceiling`: the τ a perfect predictor would reach against the seed-mean accuracy.",
            "",
            "### All random networks",
            "",
            _correlation_table([r for r in tables.correlation if r.population == "random"]),
            "",
            *verdicts(tables.correlation),
            "",
        ]
        stratum = [r for r in tables.correlation if r.population == "stratum"]
        if stratum:
            parts += [
                "### The stratum: networks filling the budget",
                "",
                f"The random and `stratum` networks filling at least {context['stratum_fill']:.0%} of the budget: "
                "the choice a budget-filling search makes, where size no longer tells networks apart.",
                "",
                _correlation_table(stratum),
                "",
                *verdicts(tables.correlation, "stratum"),
                "",
            ]
        parts += [
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
        if tables.baseline[0].matched.n:
            fill = tables.baseline[0].found_fill
            parts += [
                f"Size-matched: the {tables.baseline[0].matched.n} random and `stratum` networks filling at least "
                f"{context['stratum_fill']:.0%} of the budget. The found network fills {100 * fill:.1f}% of it"
                + (": below the stratum, so it is compared with larger networks." if fill < context["stratum_fill"] else "."),
                "",
                _table(["accuracy", "found", "size-matched mean ± std", "size-matched best", "percentile"],
                       [[r.accuracy, _pct(r.found_acc), _spread(r.matched), _pct(r.matched_best), f"{r.matched_percentile:.1f}"]
                        for r in tables.baseline]),
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

