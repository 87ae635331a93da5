"""SpikeNAS's claim in one table: what each way of choosing a 256 KiB network gets, trained alike.

    python bench/picks_fmnist.py [--epochs 5] [--seeds 0 1] [--picks NAME ...] [--out DIR] [--quick]

Five networks within ``configs/search.yaml``'s 256 KiB budget on Fashion-MNIST, each chosen once:

- ``spikenas``: ``spikenas search --config configs/search.yaml`` (the consecutive memory-aware search);
- ``snasnet_random``: the best-scoring of SNASNet's 5,000 random candidates (``--strategy random``);
- ``evolution``: regularised evolution's best over 5,000 candidates (``--strategy evolution``);
- ``largest``: the largest of those 5,000 random candidates that fits (the size baseline's pick);
- ``random_median``: the random candidate of median score (a typical random pick);

then each is trained from every ``--seeds`` seed with the same recipe (``configs/search.yaml``'s:
Adam 3e-3 with a per-step cosine, batch 32, channels-last; ``--epochs`` epochs) and its best
checkpoint (validation accuracy) is tested on the 10,000 test images. Prints one line per pick
(mean ± std test accuracy, search seconds, bytes, genotype), then last::

    spikenas=<mean>±<std> snasnet_random=.. evolution=.. largest=.. random_median=.. seeds=<n> epochs=<e>

``--picks`` trains only the picks named (the searches all run, once): two processes with
disjoint ``--picks`` and the same ``--out`` train side by side (e.g. one per core), and a last
run without it prints the whole table from what they left. ``--quick`` (the script's own
check, minutes): 500 candidates, 100 training steps per epoch, 2,000 test images. A stopped run
reuses the searches and trainings already done (same ``--out``), and an interrupted training
goes on from its last checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

import yaml

from spikenas.base.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "search.yaml"
PICKS = ("spikenas", "snasnet_random", "evolution", "largest", "random_median")


def genotype_from_text(text: str, nodes: int) -> dict:
    """``search.csv``'s genotype text (``0>1:conv3x3 ... | ...``) as a genotype mapping."""
    cells = []
    for cell in text.split(" | "):
        edges = []
        for edge in cell.split():
            pair, op = edge.split(":")
            src, dst = (int(n) for n in pair.split(">"))
            edges.append([op, src, dst])
        cells.append({"nodes": nodes, "edges": edges})
    return {"cells": cells}


def search(name: str, out: Path, extra: list[str]) -> tuple[Path, float]:
    """``spikenas search`` into ``out/<name>`` (or the finished one there): its run and seconds."""
    from spikenas.app.cli import main

    directory = out / name
    done = directory / "seconds.txt"
    if not done.is_file():
        start = time.perf_counter()
        main(["search", "--config", str(CONFIG), "--trainer.default_root_dir", str(directory),
              "--trainer.enable_progress_bar", "false", *extra])
        done.write_text(f"{time.perf_counter() - start:.2f}\n")
    run = sorted(directory.glob("lightning_logs/version_*"), key=lambda p: int(p.name.split("_")[1]))[-1]
    return run, float(done.read_text())


def from_candidates(run: Path, out: Path) -> dict[str, Path]:
    """``largest`` and ``random_median`` from the random search's candidates, as fit configs."""
    final = yaml.safe_load((run / "final.yaml").read_text())
    budget = final["model"]["budget"]
    with (run / "search.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["stage"] == "random" and int(r["bytes"]) <= budget]
    largest = max(rows, key=lambda r: (int(r["bytes"]), float(r["score"])))
    ranked = sorted(rows, key=lambda r: float(r["score"]))
    median = ranked[len(ranked) // 2]
    nodes = final["model"]["genotype"]["cells"][0]["nodes"]
    configs = {}
    for pick, row in (("largest", largest), ("random_median", median)):
        config = dict(final, model={**final["model"], "genotype": genotype_from_text(row["genotype"], nodes)})
        path = out / pick / "final.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, yaml.safe_dump(config, sort_keys=False))  # another process may be reading it
        configs[pick] = path
    return configs


def train_and_test(final: Path, directory: Path, seed: int, epochs: int, extra: list[str]) -> float:
    """Test accuracy of ``final.yaml``'s network trained from ``seed`` (reused when done)."""
    from spikenas.app.cli import main

    result = directory / "test_acc.txt"
    if result.is_file():
        return float(result.read_text())
    common = ["--trainer.default_root_dir", str(directory), "--seed_everything", str(seed), "--model.seed", str(seed),
              "--trainer.enable_progress_bar", "false", "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
              "--trainer.logger.init_args.save_dir", str(directory), "--trainer.logger.init_args.name", "fit"]
    fits = sorted((directory / "fit").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    lasts = [f / "checkpoints" / "last.ckpt" for f in fits if (f / "checkpoints" / "last.ckpt").is_file()]
    resume = ["--ckpt_path", str(lasts[-1])] if lasts else []  # an interrupted fit goes on (from its newest epoch)
    main(["fit", "--config", str(final), "--trainer.max_epochs", str(epochs), *common, *resume, *extra])
    best = max((directory / "fit").rglob("best-*.ckpt"), key=lambda p: float(p.stem.rsplit("-acc", 1)[1]))
    main(["test", "--config", str(final), "--ckpt_path", str(best), *common, "--trainer.logger.init_args.name", "test", *extra])
    metrics = sorted((directory / "test").rglob("metrics.csv"))[-1]
    with metrics.open(newline="") as handle:
        accuracy = float([r for r in csv.DictReader(handle) if r.get("test/acc")][-1]["test/acc"])
    result.write_text(f"{accuracy}\n")
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", default=str(ROOT / "lightning_logs" / "bench_picks_fmnist"))
    parser.add_argument("--picks", nargs="+", choices=PICKS, default=list(PICKS), help="train only these (default: all)")
    parser.add_argument("--quick", action="store_true", help="the script's own check: minutes, not hours")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    out = Path(args.out)
    candidates = "500" if args.quick else "5000"
    short = ["--trainer.limit_train_batches", "100", "--trainer.limit_val_batches", "20",
             "--trainer.limit_test_batches", "63"] if args.quick else []

    runs = {"spikenas": search("spikenas", out, []),
            "snasnet_random": search("snasnet_random", out, ["--strategy", "random", "--candidates", candidates]),
            "evolution": search("evolution", out, ["--strategy", "evolution", "--candidates", candidates])}
    finals = {name: run / "final.yaml" for name, (run, _) in runs.items()}
    finals.update(from_candidates(runs["snasnet_random"][0], out))
    seconds = {name: runs[name][1] for name in runs}
    seconds.update(largest=seconds["snasnet_random"], random_median=seconds["snasnet_random"])

    summary = {}
    for pick in (p for p in PICKS if p in args.picks):
        accuracies = [train_and_test(finals[pick], out / pick / f"seed{seed}", seed, args.epochs, short)
                      for seed in args.seeds]
        model = yaml.safe_load(finals[pick].read_text())["model"]
        summary[pick] = (statistics.fmean(accuracies), statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0)
        print(f"{pick}: test_acc={summary[pick][0]:.4f}±{summary[pick][1]:.4f} ({', '.join(f'{a:.4f}' for a in accuracies)}) "
              f"search_seconds={seconds[pick]:.1f} genotype={model['genotype']}", flush=True)
    print(" ".join(f"{pick}={mean:.4f}±{std:.4f}" for pick, (mean, std) in summary.items())
          + f" seeds={len(args.seeds)} epochs={args.epochs}")


if __name__ == "__main__":
    sys.exit(main())
