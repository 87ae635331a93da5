"""Does the hand-written no-grad LIF path pay? It against norse's step, layer and whole network.

``spikenas.neuron.LIF`` runs norse's box-LIF step when gradients flow and, without gradients
(every candidate the search scores), an in-place loop that gives the same spikes bit for bit
(``tests/test_neuron.py``). This times both on one LIF layer and on scoring one whole network
(``score_network``), on the same inputs. The last line printed is::

    lif_inplace_ms=<a> lif_norse_ms=<b> lif_speedup=<b/a> score_inplace_ms=<c> score_norse_ms=<d> score_speedup=<d/c> lif_compiled_ms=<e> compiled_speedup=<a/e> compile_s=<s>

``lif_compiled_ms``: the same layer in the compiled recurrence ``spikenas search`` uses for large
layers (``compile_s``: its first call, compilation included). ``--cifar-layer`` times a layer
of SNASNet's CIFAR-10 first cell (``[5, B, 128, 32, 32]``) instead of the search's.
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import torch

from spikenas.network import SpikingNetwork
from spikenas.neuron import LIF, NeuronConfig, compiled_inference
from spikenas.neuron import lif as lif_module
from spikenas.neuron.functional import lif_parameters, lif_sequence, lif_sequence_no_grad
from spikenas.score import score_network
from spikenas.score.sahd import SAHD
from spikenas.space import CellGenotype, Genotype, MacroConfig

from device import device_name, sync  # bench/device.py


def norse_steps(x: torch.Tensor, rate: float, threshold: float, reset: str, v_reset: float) -> torch.Tensor:
    """What ``LIF.forward`` does when gradients flow: norse's step, frame by frame."""
    return lif_sequence(x, lif_parameters(rate, threshold, reset, v_reset, "super", 2.0))


def best_ms(fn, device: torch.device, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls after one warm-up, in milliseconds."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cifar-layer", action="store_true", help="time a [5, B, 128, 32, 32] layer (SNASNet CIFAR-10)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    # the Fashion-MNIST search's network (configs/search.yaml): 14x14 cells, width 32, T = 5
    macro = MacroConfig(input_shape=(1, 28, 28), timesteps=5, channels=32, stem_stride=2, head_pool=2, head_hidden=0, votes=1)
    cell = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("conv1x1", 0, 2), ("conv3x3", 1, 2),
                                     ("conv3x3", 0, 3), ("conv3x3", 1, 3), ("conv1x1", 2, 3)])
    network = SpikingNetwork(Genotype((cell, cell)), macro, NeuronConfig(), seed=0).to(device)
    images = torch.randn(args.batch_size, *macro.input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    layer = LIF(NeuronConfig()).to(device)
    shape = (128, 32, 32) if args.cifar_layer else macro.cell_shape(0)  # SNASNet's CIFAR-10 first cell, or the search's
    currents = 2 * torch.rand(macro.timesteps, args.batch_size, *shape, generator=torch.Generator().manual_seed(1)).to(device)

    with torch.inference_mode():
        lif_inplace = best_ms(lambda: layer(currents), device, args.repeats)
        score_inplace = best_ms(lambda: score_network(network, [images], SAHD()), device, args.repeats)
        with mock.patch.object(lif_module, "lif_sequence_inference", norse_steps):
            lif_norse = best_ms(lambda: layer(currents), device, args.repeats)
            score_norse = best_ms(lambda: score_network(network, [images], SAHD()), device, args.repeats)
            assert torch.equal(layer(currents), lif_sequence_no_grad(currents, 0.75, 1.0, "hard", 0.0))
        with compiled_inference(min_elements=0):  # what spikenas search does for large layers
            start = time.perf_counter()
            layer(currents)
            compile_s = time.perf_counter() - start
            lif_compiled = best_ms(lambda: layer(currents), device, args.repeats)
            assert torch.equal(layer(currents), lif_sequence_no_grad(currents, 0.75, 1.0, "hard", 0.0))

    print(f"device={device_name(device)} lif_shape={list(currents.shape)} batch={args.batch_size}")
    print(f"lif_inplace_ms={lif_inplace:.2f} lif_norse_ms={lif_norse:.2f} lif_speedup={lif_norse / lif_inplace:.2f} "
          f"score_inplace_ms={score_inplace:.1f} score_norse_ms={score_norse:.1f} score_speedup={score_norse / score_inplace:.2f} "
          f"lif_compiled_ms={lif_compiled:.2f} compiled_speedup={lif_inplace / lif_compiled:.2f} compile_s={compile_s:.1f}")


if __name__ == "__main__":
    main()
