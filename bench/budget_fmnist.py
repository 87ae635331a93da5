"""Does searching the whole budget beat the largest network that fits? Five ways to spend a budget, trained alike.

    python bench/budget_fmnist.py [--budgets 64KiB 256KiB] [--seeds 0 1 2 3 4 5] [--epochs 5] [--out DIR] [--jobs N] [--quick]

Arms, each chosen once per budget on Fashion-MNIST, all from the same widths
(``configs/search_budget.yaml``'s channels 8..64, head pooling 1/2/4, T = 5):

- ``A``: the largest 32-bit network that fits: ``spikenas search --config configs/search.yaml
  --score size`` (SpikeNAS's macro rule, cells chosen for the most parameters);
- ``A8``: the same at 8-bit weights (``--cost_options "{weight_bits: 8}"``, trained quantised);
- ``C``: today's SpikeNAS search (``configs/search.yaml``: the rule's macro, SAHD, 32-bit);
- ``D``: the whole-budget search (``configs/search_budget.yaml``: precision 4/8/32, width, 1-3
  cells, short trainings choose);
- ``E``: D's short trainings on random candidates (``--strategy random --candidates 1
  --trials.filter random``): as many trials as D, networks drawn at random.

Each arm's network is trained from every seed with the same recipe (``configs/search.yaml``'s:
Adam 3e-3, per-step cosine, batch 32, ``--epochs`` epochs; the arm's precision trained in),
its best checkpoint (validation accuracy) tested on the 10,000 test images. Seeds are paired
across arms: seed ``s`` sets every arm's initial weights and data order.

Printed per arm: mean test accuracy, the 95% t-interval of that mean, and the paired
difference to A8 (per seed, the arm's accuracy minus A8's) with its 95% t-interval; then, last,
one line per budget::

    budget=64KiB A=.. A8=.. C=.. D=.. E=.. d_minus_a8=.. d_minus_a8_low=.. d_search_s=..

(``-`` for an arm not run at that budget; ``d_minus_a8_low``: the interval's lower end;
``d_search_s``: D's search wall time, seconds). ``--arms`` trains only those arms (two
processes with disjoint arms and one ``--out`` train side by side; a last run without it
prints the table). A stopped run reuses every search and training it finished (same ``--out``);
an interrupted training goes on from its last checkpoint. ``--jobs N`` runs the trainings (after
the searches, which run one at a time) in N processes at once, each with its share of the CPU
threads: on a GPU, whose small kernels leave it mostly idle under one process, or a machine of
many cores. ``--quick`` (the script's own check, minutes): 64 KiB, two seeds, one epoch of 40
steps, 1,000 test images, D's trials a few chunks.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from picks_fmnist import train_and_test  # noqa: E402  (the picks bench's recipe: fit, then test the best)

ROOT = Path(__file__).resolve().parents[1]
RULE = ROOT / "configs" / "search.yaml"
BUDGET = ROOT / "configs" / "search_budget.yaml"
ARMS = ("A", "A8", "C", "D", "E")
PLAN = {"64KiB": ARMS, "256KiB": ("A8", "D")}  # the arms each budget runs (issue 33)
SEEDS = {"64KiB": 6, "256KiB": 4}
WIDTHS = ["--space.channels", "[64, 48, 32, 24, 16, 8]"]
# t quantiles (two-sided 95%) by degrees of freedom: a 95% interval of a mean of n paired seeds
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 19: 2.093, 24: 2.064, 29: 2.045}


def t975(df: int) -> float:
    """The two-sided 95% t quantile for ``df`` degrees of freedom (the next smaller tabled df: wider)."""
    return T975[max(k for k in T975 if k <= df)]


def interval(values: list[float]) -> tuple[float, float, float]:
    """``(mean, low, high)``: the 95% t-interval of the mean of ``values`` (n >= 2)."""
    mean = statistics.fmean(values)
    half = t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def arm_command(arm: str, budget: str, quick: bool) -> tuple[Path, list[str]]:
    """The config and extra arguments of ``spikenas search`` for ``arm`` at ``budget``."""
    common = ["--budget", budget, *WIDTHS]
    if arm == "A":
        return RULE, [*common, "--score", "size"]
    if arm == "A8":
        return RULE, [*common, "--score", "size", "--cost_options", "{weight_bits: 8}"]
    if arm == "C":
        return RULE, common
    trials = ["--trials.epochs", "0.02", "--trials.rungs", "2", "--trials.val_images", "500"] if quick else []
    if arm == "D":
        return BUDGET, [*common, *trials]
    return BUDGET, [*common, *trials, "--strategy", "random", "--candidates", "1", "--trials.filter", "random"]


def searched(arm: str, budget: str, out: Path, quick: bool) -> tuple[Path, float]:
    """``final.yaml`` of ``arm``'s search at ``budget`` (run now, or the finished one) and its seconds."""
    from spikenas.app.cli import main

    directory = out / budget / arm
    done = directory / "search.json"
    if not done.is_file():
        config, extra = arm_command(arm, budget, quick)
        start = time.perf_counter()
        main(["search", "--config", str(config), "--trainer.default_root_dir", str(directory),
              "--trainer.enable_progress_bar", "false", *extra])
        seconds = time.perf_counter() - start
        run = sorted(directory.glob("lightning_logs/version_*"), key=lambda p: int(p.name.split("_")[1]))[-1]
        directory.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps({"final": str(run / "final.yaml"), "seconds": seconds}))
    record = json.loads(done.read_text())
    return Path(record["final"]), float(record["seconds"])


def train_all(runs: list[tuple[Path, Path, int]], epochs: int, extra: list[str], jobs: int) -> list[float]:
    """Test accuracy of each ``(final.yaml, directory, seed)`` of ``runs`` trained by
    :func:`train_and_test`, in order; ``jobs`` > 1: that many processes at once."""
    if jobs == 1:
        return [train_and_test(final, directory, seed, epochs, extra) for final, directory, seed in runs]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_use_threads, initargs=(threads,)) as pool:
        futures = [pool.submit(train_and_test, final, directory, seed, epochs, extra) for final, directory, seed in runs]
        return [future.result() for future in futures]


def _use_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def describe(final: Path) -> str:
    model = yaml.safe_load(final.read_text())["model"]
    m, bits = model["macro"], model["quantization"]["weight_bits"] or 32
    return (f"{bits}-bit, {len(model['genotype']['cells'])} cells, T={m['timesteps']}, channels={m['channels']}, "
            f"head_pool={m['head_pool']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", nargs="+", default=list(PLAN))
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 6 at 64KiB, 4 at 256KiB")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), help="train only these (default: all)")
    parser.add_argument("--out", default=str(ROOT / "lightning_logs" / "bench_budget_fmnist"))
    parser.add_argument("--quick", action="store_true", help="the script's own check: minutes, not hours")
    parser.add_argument("--jobs", type=int, default=1, help="trainings run at once, each in its own process")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    out = Path(args.out)
    budgets = ["64KiB"] if args.quick else args.budgets
    short = ["--trainer.limit_train_batches", "40", "--trainer.limit_val_batches", "10",
             "--trainer.limit_test_batches", "32"] if args.quick else []
    epochs = 1 if args.quick else args.epochs
    lines = []
    for budget in budgets:
        arms = PLAN.get(budget, ARMS)
        seeds = args.seeds or (list(range(2)) if args.quick else list(range(SEEDS.get(budget, 4))))
        finals: dict[str, Path] = {}
        seconds: dict[str, float] = {}
        for arm in (a for a in arms if a in args.arms):
            finals[arm], seconds[arm] = searched(arm, budget, out, args.quick)
        runs = [(final, out / budget / arm / f"seed{s}", s) for arm, final in finals.items() for s in seeds]
        trained = iter(train_all(runs, epochs, short, args.jobs))
        accuracies = {arm: [next(trained) for _ in seeds] for arm in finals}
        for arm, final in finals.items():
            mean, low, high = interval(accuracies[arm])
            line = (f"{budget} {arm}: test_acc={mean:.4f} [{low:.4f}, {high:.4f}] ({', '.join(f'{a:.4f}' for a in accuracies[arm])}) "
                    f"search_s={seconds[arm]:.1f} {describe(final)}")
            if "A8" in accuracies and arm != "A8":
                d_mean, d_low, d_high = interval([a - b for a, b in zip(accuracies[arm], accuracies["A8"])])
                line += f" minus_A8={d_mean:+.4f} [{d_low:+.4f}, {d_high:+.4f}]"
            print(line, flush=True)
        if "D" in accuracies and "A8" in accuracies:
            d_mean, d_low, _ = interval([d - a for d, a in zip(accuracies["D"], accuracies["A8"])])
            diff = f"d_minus_a8={d_mean:+.4f} d_minus_a8_low={d_low:+.4f}"
        else:
            diff = "d_minus_a8=- d_minus_a8_low=-"
        means = " ".join(f"{arm}={statistics.fmean(accuracies[arm]):.4f}" if arm in accuracies else f"{arm}=-" for arm in ARMS)
        lines.append(f"budget={budget} {means} {diff} d_search_s={seconds['D']:.0f}" if "D" in seconds else
                     f"budget={budget} {means} {diff} d_search_s=-")
    for line in lines:
        print(line)


if __name__ == "__main__":
    sys.exit(main())
