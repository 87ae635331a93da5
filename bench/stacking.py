"""Would scoring several candidates per launch pay? The incremental scorer's per-candidate work,
one candidate at a time against K stacked along the batch.

For each candidate a coordinate move recomputes a convolution edge (LIF -> conv 3x3 -> batch
norm, ``[T, B, C, H, W]``) and the SAHD kernel of the LIF layer after it. This times that work
for K candidates run one after another and for the same K stacked into one ``[T, K*B, C, H,
W]`` tensor (one launch per operation), per candidate, at three settings: ``quick``
(``bench/search_speed.py --quick``: C 8, batch 32, 14x14), ``fmnist`` (``configs/search.yaml``:
C 32, batch 128, 14x14) and ``cifar`` (SNASNet's first CIFAR-10 cell: C 128, batch 256, 32x32;
K up to 2, and only with ``--cifar`` on a CPU). Stacked batch norm here pools the K candidates'
statistics; keeping them per candidate, as scoring must, would add work, so the stacked
figures are an upper bound on what batching can save. The last line printed is::

    quick_speedup=<x> fmnist_speedup=<x> [cifar_speedup=<x>] best_k=<k,k[,k]> device=<name>

``<setting>_speedup``: time per candidate one at a time over stacked, at the best K (> 1 means
batching pays).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from spikenas.base.allocator import keep_freed_memory
from spikenas.neuron import LIF, NeuronConfig
from spikenas.score import neurons_flat
from spikenas.score.sahd import SAHD

from device import device_name, sync  # bench/device.py

SETTINGS = {"quick": (8, 32, 14), "fmnist": (32, 128, 14), "cifar": (128, 256, 32)}  # C, batch, H = W


def edge_and_kernel(lif: LIF, conv: nn.Conv2d, norm: nn.BatchNorm2d, after: LIF, score: SAHD, x: torch.Tensor, k: int) -> None:
    """The edge on ``x [T, k*B, C, H, W]`` and the kernel of the LIF after it, per candidate."""
    steps, batch = x.shape[:2]
    y = norm(conv(lif(x).flatten(0, 1))).unflatten(0, (steps, batch))
    spikes = neurons_flat(after(y))
    for chunk in spikes.chunk(k, dim=1):
        score.kernel(chunk)


def per_candidate_ms(setting: str, k: int, stacked: bool, device: torch.device, repeats: int) -> float:
    channels, batch, size = SETTINGS[setting]
    neuron = NeuronConfig()
    lif, after = LIF(neuron).to(device), LIF(neuron).to(device)
    conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(device, memory_format=torch.channels_last)
    norm = nn.BatchNorm2d(channels).to(device, memory_format=torch.channels_last)  # batch statistics
    score = SAHD()

    def inputs(n: int) -> torch.Tensor:  # channels-last [T, n, C, H, W], as the search scores
        return torch.randn(5, n, size, size, channels, device=device).permute(0, 1, 4, 2, 3)

    xs = [inputs(batch * k)] if stacked else [inputs(batch) for _ in range(k)]
    with torch.inference_mode():
        def run() -> None:
            for x in xs:
                edge_and_kernel(lif, conv, norm, after, score, x, k if stacked else 1)
        run()
        sync(device)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            sync(device)
            best = min(best, time.perf_counter() - start)
    return best / k * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cifar", action="store_true", help="also the CIFAR setting on a CPU (GB-sized tensors)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()
    device = torch.device(args.device)
    settings = ["quick", "fmnist"] + (["cifar"] if args.cifar or device.type == "cuda" else [])
    speedups, best_ks = [], []
    for setting in settings:
        ks = (1, 2) if setting == "cifar" else (1, 2, 4, 8)
        repeats = max(3, args.repeats // 4) if setting == "cifar" else args.repeats
        alone = per_candidate_ms(setting, 1, False, device, repeats)
        stacked = {k: per_candidate_ms(setting, k, True, device, repeats) for k in ks[1:]}
        for k, ms in stacked.items():
            print(f"{setting}: K={k} one at a time {alone:.3f} ms/candidate, stacked {ms:.3f} ms/candidate", flush=True)
        k = min(stacked, key=stacked.get)
        speedups.append(f"{setting}_speedup={alone / stacked[k]:.2f}")
        best_ks.append(str(k))
    print(f"{' '.join(speedups)} best_k={','.join(best_ks)} device={device_name(device)}")


if __name__ == "__main__":
    main()
