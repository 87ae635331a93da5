"""Genotypes costed per second: Profiler.profile + the cost model, on random 2-cell genotypes.

The memory-aware search costs every candidate it considers, so costing must be far cheaper than
scoring (one forward pass). Run: ``.venv/bin/python bench/cost_throughput.py [--n N]``. The
last line is ``genotypes_per_s=<x>``; the bar is 10,000/s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import random
import time

os.environ.setdefault("SPIKENAS_DISABLE_PLUGIN_AUTOLOAD", "1")

from spikenas import Genotype  # noqa: E402
from spikenas.neuron import NeuronConfig  # noqa: E402
from spikenas.plugin import get_registries  # noqa: E402
from spikenas.space import CellSpace, MacroConfig  # noqa: E402
from spikenas.network.profile import Profiler  # noqa: E402

OPS = ["zero", "skip", "conv1x1", "conv3x3", "avgpool"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="genotypes to cost")
    parser.add_argument("--cost-model", default="memory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    registries = get_registries()
    macro, neuron = MacroConfig(), NeuronConfig()
    space = CellSpace(OPS, registries.operations, backward=True)
    rng = random.Random(args.seed)
    genotypes = [Genotype((space.sample(rng), space.sample(rng))) for _ in range(args.n)]
    distinct = len(set(genotypes))

    # a fresh profiler, as a search starts with: first-seen parts are built on the meta device
    # inside the timed loop (5 operations x 2 cell shapes + stem/reduction/head)
    start = time.perf_counter()
    profiler = Profiler(macro, neuron, registries.operations)
    cost = registries.cost_models.create(args.cost_model)
    total = 0
    for g in genotypes:
        total += cost(profiler.profile(g)).total_bytes
    seconds = time.perf_counter() - start

    print(f"macro: {macro}")
    print(f"{args.n} random 2-cell genotypes ({distinct} distinct, forward and backward edges), "
          f"cost model {args.cost_model!r}: {seconds:.3f} s, mean {total / args.n / 1024:.1f} KiB")
    print(f"genotypes_per_s={args.n / seconds:.0f}")


if __name__ == "__main__":
    main()
