"""Score throughput: whole networks scored per second at SNASNet's settings.

Random 2-cell genotypes at SNASNet's CIFAR-10 macro as its official HEAD builds it
(``MacroConfig.snasnet_cifar10()``, model_snn.py of 5114ff9: 3x32x32 inputs, width 256, T = 5,
head 1024) are built and scored with SAHD on two batches of 256 images, SNASNet's protocol
(random normalised images: throughput does not depend on their content), the way ``spikenas
search`` scores them (channels-last, the LIF recurrence of large layers compiled; ``--contiguous``
and ``--eager-lif`` turn either off). ``--channels 128 --score-batches 1`` is the setting of the
figures measured before 2026-12-05 (the intermediate commit 263e6bc's width, one batch). Reports the forward FLOPs per candidate
(``torch.utils.flop_counter``), the achieved FLOP/s and their share of the device's dense
matmul rate measured in the same run (a practical peak). The last line printed is::

    candidates_per_s=<x> seconds_per_candidate=<s> flop_per_candidate=<f> peak_fraction=<p> device=<name>
"""

from __future__ import annotations

import argparse
import contextlib
import random
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from spikenas.base.allocator import keep_freed_memory
from spikenas.neuron import NeuronConfig, compiled_inference
from spikenas.score import score_network
from spikenas.space.config import SearchSpaceConfig
from spikenas.search.cell_search import build_context
from spikenas.space.genotype import Genotype
from spikenas.space.macro import MacroConfig

from device import device_name, sync  # bench/device.py


def matmul_peak(device: torch.device, size: int = 4096, repeats: int = 10) -> float:
    """FLOP/s of a dense fp32 matmul, the practical peak of the device."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--candidates", type=int, default=None, help="default: 3 on CPU, 50 on CUDA")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--channels", type=int, default=MacroConfig.snasnet_cifar10().channels,
                        help="SNASNet's official width at HEAD: 256 (263e6bc: 128)")
    parser.add_argument("--score-batches", type=int, default=2, help="SNASNet's protocol scores on 2 batches")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eager-lif", action="store_true",
                        help="leave the LIF recurrence eager (default: compiled for large layers, as spikenas search does)")
    parser.add_argument("--contiguous", action="store_true",
                        help="score in the contiguous layout (default: channels-last, as spikenas search does)")
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave glibc's allocator as it is (default: keep freed memory, spikenas.base.allocator)")
    args = parser.parse_args(argv)
    kept = False if args.system_malloc else keep_freed_memory()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    count = args.candidates or (50 if device.type == "cuda" else 3)

    macro = MacroConfig.snasnet_cifar10(channels=args.channels)
    g = torch.Generator().manual_seed(args.seed)
    batches = [torch.randn(args.batch_size, *macro.input_shape, generator=g).to(device) for _ in range(args.score_batches)]
    ctx = build_context(macro, NeuronConfig(), SearchSpaceConfig(), batches, seed=args.seed, channels_last=not args.contiguous)
    rng = random.Random(args.seed)
    genotypes = [Genotype(tuple(ctx.cells.sample(rng) for _ in range(2))) for _ in range(count + 2)]

    lif = contextlib.nullcontext() if args.eager_lif else compiled_inference()
    with lif:
        for genotype in genotypes[:2]:  # warm-up (and compilation of the LIF shapes)
            score_network(ctx.engine.build(genotype), ctx.engine.batches, ctx.engine.score)
        total_flops = 0
        sync(device)
        start = time.perf_counter()
        for genotype in genotypes[2:]:
            score_network(ctx.engine.build(genotype), ctx.engine.batches, ctx.engine.score)
        sync(device)
    seconds = (time.perf_counter() - start) / count
    for genotype in genotypes[2:]:  # FLOPs counted outside the timed loop
        with FlopCounterMode(display=False) as counter:
            score_network(ctx.engine.build(genotype), ctx.engine.batches, ctx.engine.score)
        total_flops += counter.get_total_flops()
    peak = matmul_peak(device)
    achieved = total_flops / count / seconds
    print(f"settings: input={macro.input_shape} batch={args.batch_size} T={macro.timesteps} "
          f"channels={macro.channels} head_hidden={macro.head_hidden} score_batches={args.score_batches} candidates={count} keep_freed_memory={kept} "
          f"lif={'eager' if args.eager_lif else 'compiled'} layout={'contiguous' if args.contiguous else 'channels_last'}")
    print(f"flops_per_candidate={total_flops / count:.3e} achieved_flops={achieved:.3e} "
          f"matmul_peak_flops={peak:.3e} share_of_peak={achieved / peak:.3f}")
    print(f"candidates_per_s={1 / seconds:.4f} seconds_per_candidate={seconds:.4f} flop_per_candidate={total_flops / count:.3e} "
          f"peak_fraction={achieved / peak:.3f} device={device_name(device)}")


if __name__ == "__main__":
    main()
