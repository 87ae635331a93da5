"""SpikeNAS's analysis (steps 1 and 2) on Fashion-MNIST, end to end: ``spikenas analyze``.

    python bench/analyze_fmnist.py [--quick | --medium] [--out DIR] [spikenas analyze overrides...]

Runs ``spikenas analyze --config configs/analyze.yaml`` with the settings below, then reads
its outputs as a user would (``correlation.csv``, ``baseline.csv``, ``enhanced_space.yaml``,
``networks.csv``) and prints one line per score, then, last::

    tau=<SAHD's Kendall tau vs test accuracy over the random networks> spearman=<rho>
    baseline=<the reference count, macs> baseline_tau=<its tau> verdict=<SAHD against it, Holm-corrected>
    ceiling=<tau a perfect predictor would reach against the two-seed mean accuracy; nan with one seed>
    stratum_tau=<SAHD's tau over the networks filling >= 90% of the budget> stratum_networks=<how many>
    networks=<trained networks> found_percentile=<the found network among the random ones>
    matched_percentile=<among the size-matched ones> enhanced_ops=<a,b> enhanced_cells=<n> seconds=<s>

``--quick`` (95 minutes on 2 CPU cores shared with other jobs on 2026-12-06, 9,451 s of proxy
training; its first 51 networks took 20 minutes on idle cores): width 8 (cells at 14x14, 8/16/32 channels),
a 64 KiB budget, 2 draws per impact arm, 30 random networks, 20 stratum networks, 2 seeds (so
the noise ceiling, and accuracies that are means of two trainings: one seed's percentile moved
13 points with float rounding), one epoch of 10,000 training images (157 steps of 64), 2,000
validation and 2,000 test images: 71 networks, 142 trainings. The macro is fitted for 3 cells,
so the 30 random 2-cell networks span 11-44 KB and none fills 90% of the budget: the stratum
(59-65 KB) is drawn for the purpose (``studies.stratum_networks``, configs/analyze.yaml).

``--medium`` (hours on 2 CPU cores, resumed as often as needed): the config's 256 KiB budget,
the whole 54,000-image training split for one epoch, the whole validation and test sets, 1 draw
per impact arm, 40 random networks, 2 seeds (so the noise ceiling): 52 networks (the found one is
also the cell study's 2-cell network), 104 trainings, 5.4 hours of one core in all (a 2-cell
network of this space trains in about 3 minutes on one core); the 20 stratum networks add 40
trainings (not run yet).

Full (the default; on a GPU when there is one, else on the CPU for hours): the config as it is
(256 KiB, width 16 or 8 as the budget allows), 5 draws per arm, 50 random networks, 3 seeds,
one epoch of the whole 54,000-image training split, the whole validation and test sets.
A stopped run resumes where it stopped with the same command (the same ``--out``).
Extra arguments go to ``spikenas analyze`` (e.g. ``--search.budget 128KiB``).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
QUICK = [
    "--search.budget", "64KiB", "--search.space.channels", "[8]", "--model.macro.channels", "8",
    "--studies.impact_draws", "2", "--studies.random_networks", "30",
    "--proxy.train_subset", "10000", "--proxy.val_subset", "2000", "--proxy.test_subset", "2000", "--proxy.seeds", "[0, 1]",
]
MEDIUM = [
    "--studies.impact_draws", "1", "--studies.random_networks", "40",
    "--proxy.train_subset", "null", "--proxy.val_subset", "null", "--proxy.test_subset", "null", "--proxy.seeds", "[0, 1]",
]
FULL = [
    "--studies.impact_draws", "5", "--studies.random_networks", "50",
    "--proxy.train_subset", "null", "--proxy.val_subset", "null", "--proxy.test_subset", "null", "--proxy.seeds", "[0, 1, 2]",
]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    setting = parser.add_mutually_exclusive_group()
    setting.add_argument("--quick", action="store_true", help="the small setting (20-95 minutes on 2 CPU cores)")
    setting.add_argument("--medium", action="store_true", help="the realistic CPU setting (a few hours on 2 CPU cores)")
    parser.add_argument("--out", default=None, help="logs root (default lightning_logs/bench_analyze_fmnist[_quick|_medium])")
    args, extra = parser.parse_known_args()
    name = "_quick" if args.quick else "_medium" if args.medium else ""
    out = Path(args.out or ROOT / "lightning_logs" / f"bench_analyze_fmnist{name}")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")

    from spikenas.app.cli import main as spikenas

    command = ["analyze", "--config", str(ROOT / "configs" / "analyze.yaml"), *(QUICK if args.quick else MEDIUM if args.medium else FULL),
               "--trainer.default_root_dir", str(out), *extra]
    print("== spikenas " + " ".join(command), flush=True)
    start = time.perf_counter()
    spikenas(command)
    seconds = time.perf_counter() - start

    runs = sorted((out / "lightning_logs").glob("version_*"), key=lambda p: p.stat().st_mtime)
    run = next(r for r in reversed(runs) if (r / "report.md").exists())
    correlation = read_csv(run / "correlation.csv")
    for row in correlation:
        if row["accuracy"] == "test":
            print(f"{row['population']} {row['role']}={row['score']} tau={row['kendall_tau']} [{row['tau_low']}, {row['tau_high']}] "
                  f"p={row['kendall_p']} spearman={row['spearman_rho']} networks={row['networks']} {row['verdict']} {row['versus']} "
                  f"p_holm={row['margin_p_holm']}")
    test = {(r["population"], r["role"], r["score"]): r for r in correlation if r["accuracy"] == "test"}
    sahd = test[("random", "score", "sahd")]
    stratum = test.get(("stratum", "score", "sahd"), {"kendall_tau": "nan", "networks": "0"})
    reference = next((r for (population, role, _), r in test.items() if population == "random" and role == "baseline"
                      and r["score"] == sahd["versus"]), {"score": "none", "kendall_tau": "nan"})
    ceiling = next((r["kendall_tau"] for (population, role, _), r in test.items() if population == "random" and role == "ceiling"),
                   "nan")
    baseline = [r for r in read_csv(run / "baseline.csv") if r["accuracy"] == "test"][0]
    print(f"found test_acc={baseline['found_acc']} fill={baseline['found_fill']} random mean={baseline['random_mean']} "
          f"best={baseline['random_best']} gap_mean={baseline['gap_mean']} size-matched mean={baseline['matched_mean']} "
          f"best={baseline['matched_best']} (n={baseline['matched_networks']})")
    space = yaml.safe_load((run / "enhanced_space.yaml").read_text())["space"]
    networks = len({r["key"] for r in read_csv(run / "networks.csv")})
    print(f"report: {run / 'report.md'}")
    number = lambda text: float(text or "nan")  # noqa: E731
    print(f"tau={number(sahd['kendall_tau']):.3f} spearman={number(sahd['spearman_rho']):.3f} baseline={reference['score']} "
          f"baseline_tau={number(reference['kendall_tau']):.3f} verdict={sahd['verdict'] or 'none'} ceiling={number(ceiling):.3f} "
          f"stratum_tau={number(stratum['kendall_tau']):.3f} stratum_networks={stratum['networks']} networks={networks} "
          f"found_percentile={number(baseline['percentile']):.1f} matched_percentile={number(baseline['matched_percentile']):.1f} "
          f"enhanced_ops={','.join(space['operations'])} enhanced_cells={space['cells']} seconds={seconds:.0f}")

if __name__ == "__main__":
    sys.exit(main())
