"""Choose the search's default score on one analysis and check it on another (held-out) one.

    python bench/choose_score.py SELECTION_RUN HELD_OUT_RUN

Both arguments are ``spikenas analyze`` run directories (``lightning_logs/version_N``, each with
its ``correlation.csv``), measured on different networks: e.g. ``bench/analyze_fmnist.py
--quick`` (selection) and ``--medium`` (held-out). The score chosen is the one of role ``score``
(not a size baseline, not a ``+bytes`` combination: those are not searchable scores) with the
highest Kendall τ against *validation* accuracy on the selection run (decisions never look at
test accuracy). On the held-out run (its ``random`` population) it prints, per accuracy, that
score's τ with its bootstrap interval, the baseline the analysis compared it with (the reference
fixed in advance, ``versus``; not the best baseline of that run, which would be chosen on the
data it is judged on) and the Holm-corrected verdict; last::

    chosen=<score> selection_tau=<val τ> heldout_tau=<test τ> heldout_baseline=<name>
    heldout_baseline_tau=<test τ> verdict=<beats|tie|loses> ceiling=<test ceiling or nan>

The search's default should be ``chosen`` only where ``verdict=beats``: a score that ties or
loses against counting the network is no better than ``--score size``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def read_correlation(run: Path) -> list[dict[str, str]]:
    """The rows of ``run``'s ``correlation.csv`` over its ``random`` population."""
    path = run / "correlation.csv"
    if not path.is_file():
        raise SystemExit(f"choose_score: {path} not found: is {run} a finished spikenas analyze run?")
    with path.open(newline="") as handle:
        return [r for r in csv.DictReader(handle) if r.get("population", "random") == "random"]


def choose(selection: list[dict[str, str]]) -> tuple[str, float]:
    """The score (role ``score``) with the highest τ against validation accuracy."""
    scores = [r for r in selection if r["role"] == "score" and r["accuracy"] == "val" and r["kendall_tau"] not in ("", "nan")]
    if not scores:
        raise SystemExit("choose_score: the selection run has no score with a τ against validation accuracy")
    best = max(scores, key=lambda r: float(r["kendall_tau"]))
    return best["score"], float(best["kendall_tau"])


def held_out(rows: list[dict[str, str]], score: str, accuracy: str) -> dict[str, str]:
    """``score``'s row, its reference baseline's and the ceiling's on ``accuracy`` of the held-out run."""
    mine = next((r for r in rows if r["score"] == score and r["role"] == "score" and r["accuracy"] == accuracy), None)
    if mine is None:
        raise SystemExit(f"choose_score: the held-out run did not measure score {score!r}: re-run its analyze command to add it")
    reference = next((r for r in rows if r["score"] == mine["versus"] and r["role"] == "baseline" and r["accuracy"] == accuracy),
                     {"score": "none", "kendall_tau": "nan"})
    ceiling = next((r["kendall_tau"] for r in rows if r["role"] == "ceiling" and r["accuracy"] == accuracy), "nan")
    return {"tau": mine["kendall_tau"], "low": mine["tau_low"], "high": mine["tau_high"], "verdict": mine["verdict"] or "none",
            "baseline": reference["score"], "baseline_tau": reference["kendall_tau"], "ceiling": ceiling}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("selection", type=Path)
    parser.add_argument("held_out", type=Path)
    args = parser.parse_args(argv)
    chosen, selection_tau = choose(read_correlation(args.selection))
    rows = read_correlation(args.held_out)
    print(f"chosen on {args.selection} (validation τ {selection_tau:.3f}): {chosen}")
    result = {}
    for accuracy in ("val", "test"):
        result[accuracy] = r = held_out(rows, chosen, accuracy)
        print(f"held-out {accuracy}: {chosen} τ={float(r['tau']):.3f} [{float(r['low']):.3f}, {float(r['high']):.3f}] "
              f"against {r['baseline']} τ={float(r['baseline_tau']):.3f} verdict={r['verdict']} ceiling={r['ceiling']}")
    test = result["test"]
    print(f"chosen={chosen} selection_tau={selection_tau:.3f} heldout_tau={float(test['tau']):.3f} "
          f"heldout_baseline={test['baseline']} heldout_baseline_tau={float(test['baseline_tau']):.3f} "
          f"verdict={test['verdict']} ceiling={test['ceiling']}")


if __name__ == "__main__":
    sys.exit(main())
