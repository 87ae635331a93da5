"""Training-step throughput of one network, eager against ``torch.compile`` (``model.compile``).

    python bench/train_step.py [--final final.yaml] [--batch-size 128] [--stem-stride 1]
                               [--steps 30] [--device cuda|cpu]

One step is what ``SNNClassifier.training_step`` plus Lightning's optimisation do: forward
``[B, 1, 28, 28] -> [B, classes]`` (T-averaged logits), cross-entropy, backward, Adam. The
network comes from ``--final`` (a ``final.yaml`` written by ``spikenas search``) or is the
hand-written 2-cell network of ``configs/fit_fmnist.yaml``; inputs are random (a step's
time does not depend on them). Each mode warms up for 3 steps (the compiled mode's first
step includes compilation, reported as ``compile_s``). The last line printed is::

    eager_ms=<a> compiled_ms=<b> speedup=<a/b> compile_s=<c> img_per_s=<best> device=<name>
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from spikenas.lit import SNNClassifier
from spikenas.space.macro import MacroConfig

ROOT = Path(__file__).resolve().parents[1]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device).replace(" ", "_")
    return f"cpu_{torch.get_num_threads()}threads"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model: SNNClassifier, batch: tuple[torch.Tensor, torch.Tensor], steps: int) -> tuple[float, float]:
    """``(first_step_seconds, mean_step_seconds)`` of Adam training steps on one batch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = batch
    device = x.device

    def step() -> None:
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--final", type=Path, default=ROOT / "configs" / "fit_fmnist.yaml")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--stem-stride", type=int, default=None, help="default: the config's")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    model_cfg = yaml.safe_load(args.final.read_text())["model"]
    macro = dict(model_cfg.get("macro", {}), num_classes=10, input_shape=(1, 28, 28))
    if args.stem_stride is not None:
        macro["stem_stride"] = args.stem_stride
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(args.batch_size, 1, 28, 28, generator=g).to(device),
             torch.randint(0, 10, (args.batch_size,), generator=g).to(device))

    results = {}
    for mode in ("eager", "compiled"):
        model = SNNClassifier(genotype=model_cfg["genotype"], macro=MacroConfig(**macro), seed=0,
                              compile=mode == "compiled").to(device)
        model.setup("fit")
        model.train()
        results[mode] = time_steps(model, batch, args.steps)
        print(f"{mode}: first_step_s={results[mode][0]:.2f} step_ms={results[mode][1] * 1e3:.2f}", flush=True)
    eager, compiled = results["eager"][1], results["compiled"][1]
    print(f"settings: batch={args.batch_size} T={macro.get('timesteps')} stem_stride={macro.get('stem_stride')} "
          f"channels={macro.get('channels')} steps={args.steps} genotype={args.final}")
    print(f"eager_ms={eager * 1e3:.2f} compiled_ms={compiled * 1e3:.2f} speedup={eager / compiled:.2f} "
          f"compile_s={results['compiled'][0]:.1f} img_per_s={args.batch_size / min(eager, compiled):.1f} "
          f"device={device_name(device)}")


if __name__ == "__main__":
    main()
