"""SpikeNAS's analysis (steps 1 and 2) on Fashion-MNIST, end to end: ``spikenas analyze``.

    python bench/analyze_fmnist.py [--quick] [--out DIR] [spikenas analyze overrides...]

Runs ``spikenas analyze --config configs/analyze.yaml`` with the settings below, then reads
its outputs as a user would (``correlation.csv``, ``baseline.csv``, ``enhanced_space.yaml``,
``networks.csv``) and prints one line per score, then, last::

    tau=<SAHD's Kendall tau vs test accuracy> spearman=<rho> networks=<trained networks>
    found_percentile=<the found network among the random ones> enhanced_ops=<a,b> enhanced_cells=<n> seconds=<s>

``--quick`` (about 10-15 minutes on 2 CPU cores): width 8 (cells at 14x14, 8/16/32 channels),
a 64 KiB budget (it binds: 2-cell networks of this space range from about 36 to 105 KB), 2
draws per impact arm, 30 random networks, 1 seed, one epoch of 10,000 training images (157
steps of 64), 2,000 validation and 2,000 test images: 51 networks.

Full (the default; on a GPU when there is one, else on the CPU for hours): the config as it is
(256 KiB, width 16 or 8 as the budget allows), 5 draws per arm, 50 random networks, 3 seeds,
one epoch of the whole 54,000-image training split, the whole validation and test sets.
A stopped run resumes where it stopped with the same command (the same ``--out``).
Extra arguments go to ``spikenas analyze`` (e.g. ``--budget 128KiB``).
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
    "--budget", "64KiB", "--space.channels", "[8]", "--model.macro.channels", "8",
    "--studies.impact_draws", "2", "--studies.random_networks", "30",
    "--proxy.train_subset", "10000", "--proxy.val_subset", "2000", "--proxy.test_subset", "2000", "--proxy.seeds", "[0]",
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
    parser.add_argument("--quick", action="store_true", help="the 2-CPU setting (about 10-15 minutes)")
    parser.add_argument("--out", default=None, help="logs root (default lightning_logs/bench_analyze_fmnist[_quick])")
    args, extra = parser.parse_known_args()
    out = Path(args.out or ROOT / "lightning_logs" / f"bench_analyze_fmnist{'_quick' if args.quick else ''}")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")

    from spikenas.cli import main as spikenas

    command = ["analyze", "--config", str(ROOT / "configs" / "analyze.yaml"), *(QUICK if args.quick else FULL),
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
            print(f"score={row['score']} tau={row['kendall_tau']} p={row['kendall_p']} spearman={row['spearman_rho']} "
                  f"networks={row['networks']}")
    sahd = [r for r in correlation if r["score"] == "sahd" and r["accuracy"] == "test"][0]
    baseline = [r for r in read_csv(run / "baseline.csv") if r["accuracy"] == "test"][0]
    print(f"found test_acc={baseline['found_acc']} random mean={baseline['random_mean']} best={baseline['random_best']} "
          f"gap_mean={baseline['gap_mean']}")
    space = yaml.safe_load((run / "enhanced_space.yaml").read_text())["space"]
    networks = len({r["key"] for r in read_csv(run / "networks.csv")})
    print(f"report: {run / 'report.md'}")
    print(f"tau={float(sahd['kendall_tau']):.3f} spearman={float(sahd['spearman_rho']):.3f} networks={networks} "
          f"found_percentile={float(baseline['percentile']):.1f} enhanced_ops={','.join(space['operations'])} "
          f"enhanced_cells={space['cells']} seconds={seconds:.0f}")


if __name__ == "__main__":
    sys.exit(main())
