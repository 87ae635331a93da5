"""Does the fused training LIF pay? norse's step-by-step autograd against ``spikenas.neuron.fused``.

    python bench/lif_train.py [--repeats 5] [--threads 1]

Both paths run in one process, alternately, on the same tensors: (1) one LIF layer's forward and
backward at the two shapes of a Fashion-MNIST proxy network (``[5, 64, 16, 14, 14]`` and
``[5, 64, 32, 7, 7]``: T = 5, batch 64, width 16 at 14x14 then 32 at 7x7); (2) a whole Adam
training step of a 2-cell network of six convolution edges per cell at that width (the
analysis's medium setting, ``configs/search.yaml``'s data). Times are the best of ``--repeats``
rounds of 10 calls. The last line::

    layer_speedup=<large layer, norse / fused> step_norse_ms=<ms> step_fused_ms=<ms> step_speedup=<x>
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from spikenas.network import SpikingNetwork
from spikenas.neuron import LIF, NeuronConfig
from spikenas.neuron import lif as lif_module
from spikenas.space import CellGenotype, Genotype, MacroConfig


def best_ms(run, repeats: int) -> float:
    for _ in range(3):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(10):
            run()
        times.append((time.perf_counter() - start) * 100)
    return min(times)


def timed_both(run, repeats: int) -> tuple[float, float]:
    """``run``'s best ms per call with norse's path, then with the fused one."""
    fused = lif_module.FUSED_SURROGATES
    try:
        lif_module.FUSED_SURROGATES = ()
        norse = best_ms(run, repeats)
    finally:
        lif_module.FUSED_SURROGATES = fused
    return norse, best_ms(run, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    layer = LIF(NeuronConfig())
    speedups = []
    for shape in [(5, 64, 16, 14, 14), (5, 64, 32, 7, 7)]:
        x = torch.randn(*shape, requires_grad=True)
        norse, fused = timed_both(lambda: layer(x).sum().backward(), args.repeats)
        speedups.append(norse / fused)
        print(f"layer {list(shape)}: norse {norse:.2f} ms, fused {fused:.2f} ms fwd+bwd ({norse / fused:.2f}x)", flush=True)

    cell = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("conv1x1", 0, 2), ("conv3x3", 1, 2),
                                     ("conv3x3", 0, 3), ("conv1x1", 1, 3), ("conv1x1", 2, 3)])
    macro = MacroConfig(input_shape=(1, 28, 28), num_classes=10, timesteps=5, channels=16, head_pool=1, head_hidden=0,
                        stem_stride=2, dropout=0.0)
    network = SpikingNetwork(Genotype((cell, cell)), macro, NeuronConfig(), seed=0).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(network.parameters(), 3e-3)
    images = torch.randn(64, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (64,))

    def step() -> None:
        loss = F.cross_entropy(network(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    norse, fused = timed_both(step, args.repeats)
    print(f"training step (batch 64): norse {norse:.1f} ms, fused {fused:.1f} ms", flush=True)
    print(f"layer_speedup={speedups[0]:.2f} step_norse_ms={norse:.1f} step_fused_ms={fused:.1f} step_speedup={norse / fused:.2f} "
          f"threads={torch.get_num_threads()}")


if __name__ == "__main__":
    main()
