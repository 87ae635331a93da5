"""Search, retrain and test on Fashion-MNIST: the end-to-end benchmark of spikenas.

    python bench/train_fmnist.py [--budget B] [--epochs N] [--quick] [--out DIR]

(a) ``spikenas search --config <search config> [--budget B]`` writes ``final.yaml``;
(b) ``spikenas fit --config final.yaml`` retrains the found network, then ``spikenas test``
evaluates its best checkpoint on the test set. Training throughput is Lightning's
``ThroughputMonitor``: images per second over the last 1,000 training steps (validation
excluded). The last line printed is::

    test_acc=<a> epochs=<e> seconds=<s> param_bytes=<n> img_per_s=<r>

``--quick``: ``configs/search.yaml`` (256 KiB) and one epoch on 2 CPU cores in under 10
minutes, with the settings that get there: the stem convolution at stride 2 (cells at 14x14,
searched at that stride too), width 16, T = 5, a head that is a single FC layer on the unpooled last-cell spikes (no hidden layer,
one output per class, no dropout: population voting and a 64-neuron spiking bottleneck cost
3-4 points after one epoch), Adam (lr 3e-3, cosine per step) with batch 32. ``seconds``
covers search, fit and test.

Full (the default): ``configs/search_fmnist_1mib.yaml``'s recipe (1 MiB, 14x14 cells, width
32, head dropout 0.3, label smoothing 0.1, Adam 3e-3 with a per-step cosine, batch 32, 30
epochs, compiled). Arguments the script does not know go to ``spikenas fit`` and ``test``: for
instance ``--trainer.precision bf16-mixed --data.init_args.augment true``; a different search
takes ``--search-config`` (``--budget`` overrides its budget) or ``--final``
(``docs/benchmarks.md`` lists the measured variants).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

from lightning.pytorch.callbacks import ThroughputMonitor

ROOT = Path(__file__).resolve().parents[1]
RESULTS: dict[str, float] = {}

QUICK_SEARCH = [  # 14x14 cells, width 16, and a head that is one FC layer from the unpooled features
    "--model.macro.stem_stride", "2", "--model.macro.timesteps", "5", "--space.channels", "[16]",
    "--model.macro.head_pool", "1", "--space.head_pool", "[1]",
    "--model.macro.head_hidden", "0", "--space.head_hidden", "[0]",
    "--model.macro.votes", "1", "--model.macro.dropout", "0.0",
]
FULL_SEARCH: list[str] = []  # the search config as it is
FULL_FIT = ["--model.compile", "true"]
QUICK_FIT = [
    "--model.optimizer", "torch.optim.Adam", "--model.optimizer.lr", "3e-3",
    "--model.scheduler_interval", "step",  # the default cosine, annealed over the steps
    "--data.init_args.batch_size", "32",
]


warnings.filterwarnings("ignore", message=".*flops_per_batch")  # no FLOP count, so no MFU: fine


class Throughput(ThroughputMonitor):
    """Lightning's ``ThroughputMonitor`` (images per second over the last ``window`` training
    steps, validation excluded) that also records, into ``RESULTS``, that rate, the parameter
    bytes and the test accuracy, with the checkpoint the test evaluates (the best by
    ``val/acc``). The window (1,000 steps) leaves the first epoch's ``torch.compile`` and cuDNN
    autotuning out of a several-epoch run; a run of fewer steps is measured whole."""

    def __init__(self, window: int = 1000) -> None:
        super().__init__(batch_size_fn=lambda batch: len(batch[0]), window_size=window)

    def on_fit_start(self, trainer, pl_module) -> None:
        RESULTS["param_bytes"] = pl_module.memory_report().param_bytes

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        logged = trainer.logged_metrics
        if "train/device/samples_per_sec" in logged:  # once the window is full
            RESULTS["img_per_s"] = float(logged["train/device/samples_per_sec"])
        elif "train/samples" in logged:  # a shorter run: its whole
            RESULTS["img_per_s"] = float(logged["train/samples"]) / float(logged["train/time"])
        RESULTS["epochs"] = trainer.current_epoch + 1

    def on_fit_end(self, trainer, pl_module) -> None:
        checkpoint = trainer.checkpoint_callback  # wherever a --trainer.logger put it
        RESULTS["checkpoint"] = checkpoint.best_model_path or checkpoint.last_model_path

    def on_test_end(self, trainer, pl_module) -> None:
        RESULTS["test_acc"] = float(trainer.callback_metrics["test/acc"])


def last_version(out: Path) -> Path:
    versions = sorted(out.glob("lightning_logs/version_*"), key=lambda p: int(p.name.split("_")[1]))
    return versions[-1]


def search(budget: str | None, out: Path, config: Path, extra: list[str]) -> Path:
    """Run ``spikenas search`` (at the config's budget unless ``budget`` is given); returns the
    ``final.yaml`` it wrote."""
    from spikenas.app.cli import main

    budget_args = ["--budget", budget] if budget else []
    main(["search", "--config", str(config), *budget_args, "--trainer.accelerator", "auto",
          "--trainer.default_root_dir", str(out), *extra])
    final = last_version(out) / "final.yaml"
    if not final.is_file():
        sys.exit(f"search wrote no {final}")
    return final


def fit_and_test(final: Path, out: Path, epochs: int | None, extra: list[str]) -> None:
    """Fit ``final.yaml`` (``epochs``: None keeps its ``trainer.max_epochs``), then test the
    best checkpoint."""
    from spikenas.app.cli import main

    callback = ["--trainer.callbacks+", f"{__name__}.Throughput"]
    common = ["--trainer.default_root_dir", str(out), "--trainer.accelerator", "auto", "--trainer.devices", "1"]
    epoch_args = ["--trainer.max_epochs", str(epochs)] if epochs else []
    main(["fit", "--config", str(final), *epoch_args, *common, *callback, *extra])
    main(["test", "--config", str(final), *common, *callback, *extra, "--ckpt_path", RESULTS["checkpoint"],
          "--trainer.logger", "false"])


def run(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", default=None, help="default: the search config's")
    parser.add_argument("--epochs", type=int, default=None, help="default: 1 with --quick, else the config's")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--search-config", type=Path, default=None,
                        help="default: configs/search.yaml with --quick, else configs/search_fmnist_1mib.yaml")
    parser.add_argument("--final", type=Path, default=None, help="skip the search: retrain this final.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "lightning_logs" / "bench_train_fmnist")
    args, rest = parser.parse_known_args(argv)
    del sys.argv[1:]  # the CLI gets its arguments from us, not from the command line
    epochs = args.epochs or (1 if args.quick else None)
    search_config = args.search_config or ROOT / "configs" / ("search.yaml" if args.quick else "search_fmnist_1mib.yaml")
    start = time.perf_counter()
    final = args.final or search(args.budget, args.out / "search", search_config, QUICK_SEARCH if args.quick else FULL_SEARCH)
    fit_and_test(final, args.out / "fit", epochs, (QUICK_FIT if args.quick else FULL_FIT) + rest)
    seconds = time.perf_counter() - start
    line = (f"test_acc={RESULTS['test_acc']:.4f} epochs={int(RESULTS['epochs'])} seconds={seconds:.1f} "
            f"param_bytes={int(RESULTS['param_bytes'])} img_per_s={RESULTS['img_per_s']:.1f}")
    print(line, flush=True)
    return line


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    run()
