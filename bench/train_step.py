"""Training-step throughput of one network: eager, ``torch.compile``d, and inside Lightning.

    python bench/train_step.py [--final final.yaml] [--batch-size 128] [--stem-stride 1]
                               [--steps 30] [--device cuda|cpu] [--precision bf16-mixed]

One step is what ``SNNClassifier.training_step`` plus Lightning's optimisation do: forward
``[B, 1, 28, 28] -> [B, classes]`` (T-averaged logits), cross-entropy, backward, Adam. The
network comes from ``--final`` (a ``final.yaml`` written by ``spikenas search``) or is the
hand-written 2-cell network of ``configs/fit_fmnist.yaml``; inputs are random (a step's
time does not depend on them). Each mode warms up for 3 steps (the compiled mode's first
step includes compilation, reported as ``compile_s``). ``lightning_ms`` is the same step inside
``Trainer.fit`` (the faster of eager and compiled, random images from a DataLoader, so it
includes the host-to-device copy, logging, metrics and the LR schedule); ``overhead_ms`` is
what Lightning and the loader add to the bare step. ``--precision bf16-mixed`` runs every mode
under bfloat16 autocast (Lightning's ``precision="bf16-mixed"``); ``--channels-last`` keeps
weights and feature maps channels-last. The last line printed is::

    eager_ms=<a> compiled_ms=<b> speedup=<a/b> compile_s=<c> lightning_ms=<l> overhead_ms=<o> img_per_s=<best> device=<name>
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch.callbacks import ThroughputMonitor
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from spikenas.train.classifier import SNNClassifier
from spikenas.space.macro import MacroConfig

from device import device_name, sync  # bench/device.py

ROOT = Path(__file__).resolve().parents[1]


def time_steps(model: SNNClassifier, batch: tuple[torch.Tensor, torch.Tensor], steps: int,
               bf16: bool) -> tuple[float, float]:
    """``(first_step_seconds, mean_step_seconds)`` of Adam training steps on one batch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = batch
    device = x.device

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    step()
    sync(device)
    first = time.perf_counter() - start
    for _ in range(2):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return first, (time.perf_counter() - start) / steps


def time_lightning(model: SNNClassifier, batch_size: int, steps: int, device: torch.device, precision: str) -> float:
    """Mean seconds per step of ``Trainer.fit`` on random images (one epoch, no validation),
    measured by Lightning's ``ThroughputMonitor`` over the last ``steps`` steps (3 warm-up steps
    before them; on a GPU it synchronises after every step, so its time is the step's whole)."""
    g = torch.Generator().manual_seed(1)
    n = batch_size * (steps + 3)
    data = TensorDataset(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, pin_memory=device.type == "cuda")
    monitor = ThroughputMonitor(batch_size_fn=lambda batch: batch[0].shape[0], window_size=steps + 1)
    with tempfile.TemporaryDirectory() as logs, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*flops_per_batch")  # no FLOP count: no MFU
        trainer = pl.Trainer(max_epochs=1, accelerator=device.type, devices=1, logger=CSVLogger(logs), log_every_n_steps=1,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             limit_val_batches=0, callbacks=[monitor], precision=precision)
        trainer.fit(model, train_dataloaders=loader)
    return 1.0 / float(trainer.logged_metrics["train/device/batches_per_sec"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--final", type=Path, default=ROOT / "configs" / "fit_fmnist.yaml")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--stem-stride", type=int, default=None, help="default: the config's")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--precision", choices=["32", "bf16-mixed"], default="32")
    parser.add_argument("--channels-last", action="store_true", help="SNNClassifier(channels_last=True)")
    args = parser.parse_args(argv)
    bf16 = args.precision == "bf16-mixed"
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    model_cfg = yaml.safe_load(args.final.read_text())["model"]
    macro = dict(model_cfg.get("macro", {}), num_classes=10, input_shape=(1, 28, 28))
    if args.stem_stride is not None:
        macro["stem_stride"] = args.stem_stride
    neuron = model_cfg.get("neuron") or {}  # the config's LIF settings (learn_tau, reset, ...)
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(args.batch_size, 1, 28, 28, generator=g).to(device),
             torch.randint(0, 10, (args.batch_size,), generator=g).to(device))

    results = {}
    for mode in ("eager", "compiled"):
        model = SNNClassifier(genotype=model_cfg["genotype"], macro=MacroConfig(**macro), neuron=neuron, seed=0,
                              compile=mode == "compiled", channels_last=args.channels_last).to(device)
        model.setup("fit")
        model.train()
        results[mode] = time_steps(model, batch, args.steps, bf16)
        print(f"{mode}: first_step_s={results[mode][0]:.2f} step_ms={results[mode][1] * 1e3:.2f}", flush=True)
    eager, compiled = results["eager"][1], results["compiled"][1]
    model = SNNClassifier(genotype=model_cfg["genotype"], macro=MacroConfig(**macro), neuron=neuron, seed=0,
                          optimizer=lambda params: torch.optim.Adam(params, lr=1e-3), compile=compiled < eager,
                          channels_last=args.channels_last)
    lightning = time_lightning(model, args.batch_size, args.steps, device, args.precision)
    print(f"lightning: step_ms={lightning * 1e3:.2f} (compiled={compiled < eager})", flush=True)
    print(f"settings: precision={args.precision} channels_last={args.channels_last} batch={args.batch_size} T={macro.get('timesteps')} stem_stride={macro.get('stem_stride')} "
          f"channels={macro.get('channels')} steps={args.steps} genotype={args.final}")
    print(f"eager_ms={eager * 1e3:.2f} compiled_ms={compiled * 1e3:.2f} speedup={eager / compiled:.2f} "
          f"compile_s={results['compiled'][0]:.1f} lightning_ms={lightning * 1e3:.2f} "
          f"overhead_ms={(lightning - min(eager, compiled)) * 1e3:.2f} img_per_s={args.batch_size / min(eager, compiled):.1f} "
          f"device={device_name(device)}")


if __name__ == "__main__":
    main()
