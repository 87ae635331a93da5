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
an interrupted training goes on from its last checkpoint.

The bench is longer than a 2-core machine's session, so what it finishes is also kept in a
ledger committed with the code (``bench/results/budget_fmnist/``, see ``bench/ledger.py``): each
arm's pick (its ``final.yaml`` and search time) and each training's test accuracy, keyed by the
network and by a fingerprint of the training code. A later run, on any machine, searches and
trains only what the ledger lacks at today's code; ``--report`` prints what it holds (its last
line begins ``partial`` while a seed is missing). ``--retime D`` searches D again and records
that time, for a search that shared the CPU with trainings (the pick must be the same network).
Trainings run seed by seed, every arm of one seed before the next, so that what finishes is
paired. ``--jobs N`` runs the trainings (after
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
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ledger import Ledger, network_hash  # noqa: E402
from picks_fmnist import train_and_test  # noqa: E402  (the picks bench's recipe: fit, then test the best)

ROOT = Path(__file__).resolve().parents[1]
RULE = ROOT / "configs" / "search.yaml"
BUDGET = ROOT / "configs" / "search_budget.yaml"
ARMS = ("A", "A8", "C", "D", "E")
PLAN = {"64KiB": ARMS, "256KiB": ("A8", "D")}  # the arms each budget runs (issue 33)
SEEDS = {"64KiB": 6, "256KiB": 4}
LEDGER = ROOT / "bench" / "results" / "budget_fmnist"
Run = tuple[str, str, int, Path]  # budget, arm, seed, final.yaml
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


def search_now(arm: str, budget: str, directory: Path, quick: bool) -> tuple[Path, float]:
    """Run ``arm``'s search at ``budget`` into ``directory``: its ``final.yaml`` and wall seconds."""
    from spikenas.app.cli import main

    config, extra = arm_command(arm, budget, quick)
    start = time.perf_counter()
    main(["search", "--config", str(config), "--trainer.default_root_dir", str(directory),
          "--trainer.enable_progress_bar", "false", *extra])
    seconds = time.perf_counter() - start
    run = sorted(directory.glob("lightning_logs/version_*"), key=lambda p: int(p.name.split("_")[1]))[-1]
    return run / "final.yaml", seconds


def searched(arm: str, budget: str, out: Path, quick: bool, ledger: Ledger | None) -> tuple[Path, float]:
    """``final.yaml`` of ``arm``'s search at ``budget`` and its seconds: the ledger's pick, else the
    finished search in ``out``, else one run now (then kept in the ledger)."""
    if ledger is not None and (kept := ledger.pick(budget, arm)) is not None:
        return kept
    directory = out / budget / arm
    done = directory / "search.json"
    if not done.is_file():
        final, seconds = search_now(arm, budget, directory, quick)
        done.write_text(json.dumps({"final": str(final), "seconds": seconds}))
    record = json.loads(done.read_text())
    final, seconds = Path(record["final"]), float(record["seconds"])
    if ledger is not None:
        final = ledger.record_pick(budget, arm, final, seconds)
    return final, seconds


def retime(arm: str, budget: str, out: Path, ledger: Ledger) -> float:
    """Search ``arm`` at ``budget`` again (say, alone, where the recorded search shared the CPU) and
    record its seconds as the pick's; refused when it picks another network than the trainings'."""
    kept = ledger.pick(budget, arm)
    if kept is None:
        raise SystemExit(f"budget_fmnist: --retime {arm}: the ledger has no {budget} pick of {arm} to time again")
    directory = out / budget / f"{arm}-retime-{time.strftime('%Y%m%d-%H%M%S')}"
    final, seconds = search_now(arm, budget, directory, quick=False)
    if network_hash(final) != network_hash(kept[0]):
        raise SystemExit(f"budget_fmnist: --retime {arm}: the search at {budget} now picks another network ({final}) "
                         f"than the one its trainings are of ({kept[0]}); its time is not recorded")
    ledger.record_search_time(budget, arm, seconds)
    return seconds


def train_all(runs: list[Run], out: Path, epochs: int, extra: list[str], jobs: int, ledger: Ledger | None) -> dict[Run, float]:
    """Test accuracy of each ``(budget, arm, seed, final.yaml)`` of ``runs``: the ledger's record at
    this code, else trained by :func:`train_and_test` in ``out/<budget>/<arm>/seed<seed>`` (then
    recorded as each finishes); ``jobs`` > 1: that many trainings at once, one process each."""
    accuracies = {run: ledger.accuracy(run[0], run[1], run[2], epochs, run[3]) for run in runs} if ledger else {}
    todo = [run for run in runs if accuracies.get(run) is None]

    def finished(run: Run, accuracy: float) -> None:
        accuracies[run] = accuracy
        if ledger is not None:
            ledger.record_accuracy(run[0], run[1], run[2], epochs, run[3], accuracy)

    arguments = {run: (run[3], out / run[0] / run[1] / f"seed{run[2]}", run[2], epochs, extra) for run in todo}
    if jobs == 1:
        for run in todo:
            finished(run, train_and_test(*arguments[run]))
        return accuracies
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_use_threads, initargs=(threads,)) as pool:
        futures = {pool.submit(train_and_test, *arguments[run]): run for run in todo}
        for future in as_completed(futures):
            finished(futures[future], future.result())
    return accuracies


def _use_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def describe(final: Path) -> str:
    model = yaml.safe_load(final.read_text())["model"]
    m, bits = model["macro"], model["quantization"]["weight_bits"] or 32
    return (f"{bits}-bit, {len(model['genotype']['cells'])} cells, T={m['timesteps']}, channels={m['channels']}, "
            f"head_pool={m['head_pool']}")


def summary(budget: str, seeds: list[int], arms: list[str], finals: dict[str, Path], seconds: dict[str, float],
            accuracies: dict[str, dict[int, float]]) -> str:
    """Print one line per arm (mean test accuracy over its seeds, the 95% interval, the paired
    difference to A8 over the seeds both have); return the budget's last line, with ``partial``
    first when one of ``arms`` lacks its pick or one of ``seeds``."""
    def spread(values: list[float], sign: str = "") -> str:
        if len(values) < 2:
            return f"{values[0]:{sign}.4f} [n=1]" if values else "- [n=0]"
        mean, low, high = interval(values)
        return f"{mean:{sign}.4f} [{low:{sign}.4f}, {high:{sign}.4f}]"

    def paired(arm: str) -> list[float]:
        return [accuracies[arm][s] - accuracies["A8"][s] for s in sorted(accuracies[arm]) if s in accuracies.get("A8", {})]

    for arm, final in finals.items():
        values = [accuracies[arm][s] for s in sorted(accuracies[arm])]
        line = (f"{budget} {arm}: test_acc={spread(values)} ({', '.join(f'{a:.4f}' for a in values)}) "
                f"search_s={seconds[arm]:.1f} {describe(final)}")
        if "A8" in accuracies and arm != "A8":
            line += f" minus_A8={spread(paired(arm), '+')}"
        print(line, flush=True)
    diff = "d_minus_a8=- d_minus_a8_low=-"
    if len(differences := paired("D") if "D" in accuracies and "A8" in accuracies else []) >= 2:
        d_mean, d_low, _ = interval(differences)
        diff = f"d_minus_a8={d_mean:+.4f} d_minus_a8_low={d_low:+.4f}"
    means = " ".join(f"{arm}={statistics.fmean(accuracies[arm].values()):.4f}" if accuracies.get(arm) else f"{arm}=-" for arm in ARMS)
    partial = "partial " if any(arm not in finals or set(seeds) - set(accuracies[arm]) for arm in arms) else ""
    return f"{partial}budget={budget} {means} {diff} d_search_s=" + (f"{seconds['D']:.0f}" if "D" in seconds else "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", nargs="+", default=list(PLAN))
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 6 at 64KiB, 4 at 256KiB")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), help="train only these (default: all)")
    parser.add_argument("--out", default=str(ROOT / "lightning_logs" / "bench_budget_fmnist"))
    parser.add_argument("--ledger", default=None,
                        help=f"the committed record of picks and trainings (default: {LEDGER.relative_to(ROOT)}; "
                             "none with --quick, which takes none; '' for none)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--retime", nargs="+", choices=ARMS, default=[],
                      help="search these arms again and record their time (their pick must not change); train nothing")
    only.add_argument("--report", action="store_true", help="search and train nothing: print what the ledger holds")
    parser.add_argument("--quick", action="store_true", help="the script's own check: minutes, not hours")
    parser.add_argument("--jobs", type=int, default=1, help="trainings run at once, each in its own process")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")
    if args.quick and args.ledger:
        parser.error("--quick's trainings check the script, they are not results: it keeps no ledger")
    ledger_dir = ("" if args.quick else str(LEDGER)) if args.ledger is None else args.ledger
    ledger = Ledger(Path(ledger_dir)) if ledger_dir else None
    if (args.report or args.retime) and ledger is None:
        parser.error("--report and --retime use the ledger: give --ledger DIR")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    out = Path(args.out)
    budgets = ["64KiB"] if args.quick else args.budgets
    short = ["--trainer.limit_train_batches", "40", "--trainer.limit_val_batches", "10",
             "--trainer.limit_test_batches", "32"] if args.quick else []
    epochs = 1 if args.quick else args.epochs
    if args.retime:
        for budget in budgets:
            for arm in (a for a in args.retime if a in PLAN.get(budget, ARMS)):
                print(f"budget_fmnist: {budget} {arm}'s search took {retime(arm, budget, out, ledger):.1f} s", flush=True)
        return
    lines = []
    for budget in budgets:
        arms = [arm for arm in PLAN.get(budget, ARMS) if arm in args.arms]
        seeds = args.seeds or (list(range(2)) if args.quick else list(range(SEEDS.get(budget, 4))))
        if args.report:
            picks = {arm: kept for arm in arms if (kept := ledger.pick(budget, arm)) is not None}
        else:
            picks = {arm: searched(arm, budget, out, args.quick, ledger) for arm in arms}
        finals = {arm: final for arm, (final, _) in picks.items()}
        seconds = {arm: s for arm, (_, s) in picks.items()}
        runs = [(budget, arm, seed, final) for seed in seeds for arm, final in finals.items()]  # seed by seed: pairs first
        if args.report:
            found = {run: ledger.accuracy(run[0], run[1], run[2], epochs, run[3]) for run in runs}
        else:
            found = train_all(runs, out, epochs, short, args.jobs, ledger)
        accuracies = {arm: {run[2]: a for run, a in found.items() if run[1] == arm and a is not None} for arm in finals}
        lines.append(summary(budget, seeds, arms, finals, seconds, accuracies))
    for line in lines:
        print(line)


if __name__ == "__main__":
    sys.exit(main())
