"""Do faster ways to score keep the ranking? float32 against bf16 autocast and channels-last.

Random 2-cell genotypes of the default space are scored (SAHD, one batch) at float32 and under
``torch.autocast(dtype=bfloat16)``, once with everything in bf16 and once with the LIF membrane
integrated in float32 (convolutions in bf16), and at float32 with the network and images in the
channels-last memory layout (other convolution kernels). The ranking is kept when Kendall's
tau-b between the float32 scores and the others is at least 0.99 (issue 13's bar). On a GPU the
reference is strict float32 and TF32 (contiguous and channels-last) is measured too, on a
further line. The last line printed on the CPU is::

    candidates=<n> tau_bf16=<t> tau_bf16_fp32_membrane=<t> tau_channels_last=<t> fp32_s=<s> bf16_s=<s> bf16_fp32_membrane_s=<s> channels_last_s=<s>
"""

from __future__ import annotations

import argparse
import random
import time
from unittest import mock

import torch
from torchmetrics.functional.regression import kendall_rank_corrcoef

from spikenas.base.allocator import keep_freed_memory
from spikenas.neuron import NeuronConfig
from spikenas.neuron import lif as lif_module
from spikenas.neuron.functional import lif_sequence_no_grad
from spikenas.score import score_network
from spikenas.search.cell_search import build_context
from spikenas.space import Genotype, MacroConfig, SearchSpaceConfig

from device import device_name, sync  # bench/device.py

def fp32_membrane(x: torch.Tensor, *args) -> torch.Tensor:
    """The no-grad LIF with its membrane in float32, whatever the input's precision."""
    return lif_sequence_no_grad(x.float(), *args).to(x.dtype)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=16)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    keep_freed_memory()  # as spikenas search does

    # the Fashion-MNIST search's macro (configs/search.yaml) at a width of --channels
    macro = MacroConfig(input_shape=(1, 28, 28), timesteps=5, channels=args.channels, stem_stride=2, head_pool=2,
                        head_hidden=0, votes=1)
    images = torch.randn(args.batch_size, *macro.input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    ctx = build_context(macro, NeuronConfig(), SearchSpaceConfig(), [images], seed=0)
    rng = random.Random(0)
    genotypes = [Genotype(tuple(ctx.cells.sample(rng) for _ in range(2))) for _ in range(args.candidates)]

    def scores(precision: torch.dtype | None, layout: torch.memory_format = torch.contiguous_format) -> tuple[torch.Tensor, float]:
        sync(device)
        start = time.perf_counter()
        values = []
        batches = [b.contiguous(memory_format=layout) for b in ctx.engine.batches]
        for genotype in genotypes:
            with torch.autocast(device.type, dtype=precision or torch.float32, enabled=precision is not None):
                values.append(score_network(ctx.engine.build(genotype).to(memory_format=layout), batches, ctx.engine.score))
        sync(device)
        return torch.tensor(values, dtype=torch.float64), time.perf_counter() - start

    cuda = device.type == "cuda"
    if cuda:  # the reference is strict float32 (PyTorch lets cuDNN use TF32 by default)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    full, full_s = scores(None)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        tf32, tf32_s = scores(None)
        last_tf32, last_tf32_s = scores(None, torch.channels_last)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    half, half_s = scores(torch.bfloat16)
    with mock.patch.object(lif_module, "lif_sequence_inference", fp32_membrane):
        mixed, mixed_s = scores(torch.bfloat16)
    last, last_s = scores(None, torch.channels_last)

    def tau(other: torch.Tensor) -> float:
        finite = torch.isfinite(full) & torch.isfinite(other)
        return kendall_rank_corrcoef(full[finite], other[finite], variant="b").item()

    print(f"device={device_name(device)} macro: width {macro.channels}, 14x14 cells, T = {macro.timesteps}, batch {args.batch_size}")
    print(f"candidates={args.candidates} tau_bf16={tau(half):.4f} tau_bf16_fp32_membrane={tau(mixed):.4f} "
          f"tau_channels_last={tau(last):.4f} fp32_s={full_s:.1f} bf16_s={half_s:.1f} bf16_fp32_membrane_s={mixed_s:.1f} "
          f"channels_last_s={last_s:.1f}")
    if cuda:
        print(f"tau_tf32={tau(tf32):.4f} tau_tf32_channels_last={tau(last_tf32):.4f} tf32_s={tf32_s:.1f} "
              f"tf32_channels_last_s={last_tf32_s:.1f}")


if __name__ == "__main__":
    main()
