"""Search speed: SpikeNAS's consecutive search against SNASNet's 5,000-candidate random search
and a memory-aware regularised evolution (AutoSNN's kind of search).

All run in one process on the same scoring batch, device, score, cost model and budget; each
is timed end to end (its search plus the final whole-network score of its genotype) in the
steady state: every strategy first runs a short untimed search (kernel and allocator set-up,
compiled shapes). SpikeNAS's search, a fraction of a second with ``--quick``, is timed
``--repeats`` times before the random search, ``--probes`` times during it (evenly spaced over
its candidates, its clock stopped meanwhile, each after an untimed run as the others are) and ``--repeats`` times after it (default 5, 10
and 5 with ``--quick``, else 1, 0 and 1), and the median kept: SpikeNAS's time samples the
machine over the same minutes as the random search's, so neither a scheduler hiccup nor a
slower stretch of a shared machine decides the ratio. Every repeat must find the same network.
The evolution runs last. The last line printed is::

    speedup=<x> spikenas_score=<s> random_score=<s> spikenas_bytes=<n> random_bytes=<n> budget_bytes=<n> spikenas_candidates=<n> random_candidates=<n>
    evolution_score=<s> evolution_seconds=<s> evolution_candidates=<n> random_seconds_to_spikenas=<s> evolution_seconds_to_spikenas=<s>

(one line). ``<strategy>_seconds_to_spikenas``: the scoring seconds that strategy spent until a
candidate first scored at least as well as SpikeNAS's network (``never`` if none did): the
score reached per second, at the one level that matters.

``--quick``: Fashion-MNIST, width 8, stem stride 2 (14x14 cells), batch 32, T = 5, one
thread (under 5 minutes on 2 CPU cores).
Default (full): SNASNet's CIFAR-10 protocol (``MacroConfig.snasnet_cifar10()``, its official
HEAD's macro: width 256, T = 5, every candidate scored on two batches of 256) on CUDA when one
is available, on random CIFAR-shaped images when CIFAR-10's files are absent (said on stdout);
``--channels 128`` is the intermediate commit 263e6bc's width, which the figures measured before
2026-12-05 used; ``--channels/--batch-size/--score-batches/--data`` pick a smaller
setting for a CPU. Every strategy scores as ``spikenas search`` does (channels-last, the LIF
recurrence of large layers compiled, glibc keeping freed memory: ``spikenas.base.allocator``), so
the comparison stays fair.
The default budget is halfway between the smallest and the largest footprint of the space.

``--candidates N`` below 5,000 (SNASNet's count) shortens the random search, whose time grows
linearly with its candidates (each is sampled, costed and scored alike); the last line then
also gives ``random_seconds_per_candidate`` and ``speedup_at_5000``, the speedup extrapolated
to 5,000 candidates from the measured seconds per candidate (the random search's final
whole-network score is spread over its N candidates, so this errs high by about 1/N).
``speedup`` is always measured.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import torch

from spikenas.base.allocator import keep_freed_memory
from spikenas.base.units import format_bytes
from spikenas.neuron import NeuronConfig, compiled_inference
from spikenas.space.config import SearchSpaceConfig
from spikenas.search.settings import SearchSettings
from spikenas.search.cell_search import build_context, search
from spikenas.search.evolution import EvolutionSearch
from spikenas.search.random_search import RandomSearch
from spikenas.search.records import RecordLog
from spikenas.search.consecutive import SpikeNASSearch
from spikenas.search.strategy import SearchStrategy
from spikenas.space.genotype import CellGenotype, Edge, Genotype
from spikenas.space.macro import MacroConfig

from device import sync  # bench/device.py

SNASNET_CANDIDATES = 5000  # SNASNet's random search scores this many


def scoring_batch(data: str, batch_size: int, seed: int, root: str) -> tuple[torch.Tensor, bool]:
    """``(images, synthetic)``: a batch of the dataset's normalised training images; for CIFAR
    without its files (a GPU machine offline), random normalised CIFAR-shaped images and
    ``synthetic`` True (a candidate's scoring time does not depend on the images, its score does)."""
    from spikenas import data as datasets
    from spikenas.base.errors import SpikenasError

    module = {"fmnist": datasets.FashionMNIST, "cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[data]
    kwargs = {"root": root} if root else {}
    try:
        return module(**kwargs).sample_batch(batch_size, seed), False
    except SpikenasError:
        if data == "fmnist":
            raise
        return torch.randn(batch_size, 3, 32, 32, generator=torch.Generator().manual_seed(seed)), True


def parse_stack_bytes(value: str) -> int:
    """``--stack-bytes`` in bytes, as ``spikenas search --stack_bytes`` reads it."""
    return SearchSettings(stack_bytes=value).stack_limit()


def default_budget(macro: MacroConfig, space: SearchSpaceConfig) -> int:
    """Halfway between the cheapest network and the one with the costliest operation everywhere."""
    ctx = build_context(macro, NeuronConfig(), space, [torch.empty(0)])
    low = ctx.bytes_of(ctx.memory.cheapest(ctx.cells, space.cells))
    uniform = [
        Genotype(tuple(CellGenotype(space.nodes, tuple(Edge(i, j, op) for i, j in ctx.cells.pairs)) for _ in range(space.cells)))
        for op in ctx.cells.operations
        if op in ctx.cells.connecting
    ]
    high = max(ctx.bytes_of(g) for g in uniform)
    return (low + high) // 2


class Probed(SearchStrategy):
    """``inner`` searching as usual, with ``probe()`` run each time it has scored another
    ``every`` candidates; ``paused``: the seconds spent in probes, to take off its time."""

    def __init__(self, inner: SearchStrategy, every: int, probe) -> None:
        self.inner, self.every, self.probe = inner, every, probe
        self.name = inner.name
        self.paused = 0.0

    def run(self, ctx, evaluator):
        evaluate, due = evaluator.evaluate, [self.every]

        def probing(*args, **kwargs):
            records = evaluate(*args, **kwargs)
            if evaluator.evaluated >= due[0]:
                due[0] += self.every
                start = time.perf_counter()
                self.probe()
                self.paused += time.perf_counter() - start
            return records

        evaluator.evaluate = probing
        return self.inner.run(ctx, evaluator)


def run_strategies(args, macro: MacroConfig, space: SearchSpaceConfig, batches: list[torch.Tensor], budget: int,
                   device: torch.device) -> tuple[dict, dict]:
    """Each strategy searched and timed end to end on a context of its own, in the steady
    state: first, untimed, two networks are scored and every strategy runs a short search
    (kernel and allocator set-up, the compiled LIF shapes). SpikeNAS's search, a fraction of a
    second, is then timed ``args.repeats`` times before the random search, ``args.probes`` times
    during it (its clock stopped meanwhile) and ``args.repeats`` times after it (fresh contexts;
    the median is kept, and every repeat must find the same network), so that its time samples
    the machine's state over the same minutes as the random search's; the others run once.
    Returns ``({name: (result, seconds)}, {name: RecordLog})``."""
    def context():
        return build_context(macro, NeuronConfig(), space, batches, budget=budget, seed=args.seed,
                             stack_bytes=parse_stack_bytes(args.stack_bytes))

    warm = context()
    for cell in warm.cells.cheapest_cells()[:1] + [warm.cells.sample(random.Random(0))]:
        warm.engine.full_score(Genotype((cell,) * space.cells))
    strategies = [SpikeNASSearch(sweeps=args.sweeps, last_sweeps=args.last_sweeps, rerank=args.rerank),
                  RandomSearch(candidates=args.candidates)]
    if args.evolution_candidates:
        strategies.append(EvolutionSearch(candidates=args.evolution_candidates))
    warm_ups = [SpikeNASSearch(sweeps=args.sweeps, last_sweeps=args.last_sweeps, rerank=args.rerank),
                RandomSearch(candidates=32), EvolutionSearch(candidates=32)]
    for strategy in warm_ups[:len(strategies)]:
        search(context(), strategy, RecordLog(), show_progress=False)

    def timed_run(strategy, show_progress: bool = True) -> tuple[float, object, RecordLog]:
        ctx = context()
        log = RecordLog()
        sync(device)
        start = time.perf_counter()
        result = search(ctx, strategy, log, show_progress=show_progress)
        sync(device)
        return time.perf_counter() - start - getattr(strategy, "paused", 0.0), result, log

    spikenas, others = strategies[0], strategies[1:]
    timed = {spikenas.name: [timed_run(spikenas) for _ in range(args.repeats)]}
    for other in others:
        if other.name == "random" and args.probes:
            def probe():  # an untimed run first: the random search has just filled the caches with its own data
                sync(device)
                timed_run(spikenas, show_progress=False)
                timed[spikenas.name].append(timed_run(spikenas, show_progress=False))
            other = Probed(other, max(1, -(-other.candidates // args.probes)), probe)
        timed[other.name] = [timed_run(other)]
        if other.name == "random":
            timed[spikenas.name] += [timed_run(spikenas) for _ in range(args.repeats)]
    results, logs = {}, {}
    for strategy in strategies:
        runs = timed[strategy.name]
        if len({str(result.genotype) for _, result, _ in runs}) != 1:
            raise SystemExit(f"{strategy.name}: repeats found different networks")
        seconds, result, logs[strategy.name] = sorted(runs, key=lambda item: item[0])[len(runs) // 2]
        results[strategy.name] = (result, seconds)
        spread = f" (median of {len(runs)}: {min(t for t, _, _ in runs):.3f}-{max(t for t, _, _ in runs):.3f} s)" if len(runs) > 1 else ""
        print(f"{strategy.name}: {result.summary()}{spread} ({format_bytes(result.bytes)}) genotype: {result.genotype}", flush=True)
    return results, logs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small width and batch, Fashion-MNIST, CPU-friendly")
    parser.add_argument("--data", choices=["fmnist", "cifar10", "cifar100"], default=None)
    parser.add_argument("--root", default="", help="dataset root (default: the datamodule's)")
    parser.add_argument("--channels", type=int, default=None)
    parser.add_argument("--head-hidden", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--timesteps", type=int, default=5)
    parser.add_argument("--score-batches", type=int, default=None, help="default: 1 with --quick, else 2 (SNASNet's protocol)")
    parser.add_argument("--stem-stride", type=int, default=None, help="default: 2 with --quick (14x14 cells), else 1")
    parser.add_argument("--cells", type=int, default=2)
    parser.add_argument("--candidates", type=int, default=SNASNET_CANDIDATES,
                        help="random-search candidates (fewer: the speedup is also extrapolated to 5,000)")
    parser.add_argument("--evolution-candidates", type=int, default=500,
                        help="candidates of the evolution (population 20, sample size 5); 0 skips it")
    parser.add_argument("--sweeps", type=int, default=1)
    parser.add_argument("--last-sweeps", type=int, default=2)
    parser.add_argument("--rerank", type=int, default=3)
    parser.add_argument("--stack-bytes", default=SearchSettings.stack_bytes,
                        help="input the part after a cell may take for several candidates at once, every strategy (0: one at a time)")
    parser.add_argument("--repeats", type=int, default=None, help="SpikeNAS searches timed before and as many after the random search, the median reported (default: 5 with --quick, else 1)")
    parser.add_argument("--probes", type=int, default=None, help="SpikeNAS searches timed during the random search, evenly spaced (default: 10 with --quick, else 0)")
    parser.add_argument("--budget", default=None, help="bytes or units (default: halfway, see above)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: 1 with --quick, else torch's)")
    args = parser.parse_args(argv)
    args.repeats = max(1, args.repeats or (5 if args.quick else 1))
    args.probes = max(0, args.probes if args.probes is not None else (10 if args.quick else 0))
    kept = keep_freed_memory()  # as spikenas search does, for every strategy
    if args.threads or args.quick:
        torch.set_num_threads(args.threads or 1)  # tiny tensors: one thread beats a contended pool

    data = args.data or ("fmnist" if args.quick else "cifar10")
    channels = args.channels or (8 if args.quick else MacroConfig.snasnet_cifar10().channels)
    hidden = args.head_hidden or (64 if args.quick else 1024)
    batch_size = args.batch_size or (32 if args.quick else 256)
    score_batches = args.score_batches or (1 if args.quick else 2)
    drawn = [scoring_batch(data, batch_size, args.seed + i, args.root) for i in range(score_batches)]
    batches_cpu = [images for images, _ in drawn]
    if any(synthetic for _, synthetic in drawn):
        print(f"data: {data} not found: random normalised CIFAR-shaped images instead", flush=True)
    images = batches_cpu[0]
    base = MacroConfig.snasnet_cifar10() if data.startswith("cifar") else MacroConfig()
    macro = base.replace(
        input_shape=tuple(images.shape[1:]), num_classes=100 if data == "cifar100" else 10,
        channels=channels, head_hidden=hidden, timesteps=args.timesteps,
        stem_stride=args.stem_stride or (2 if args.quick else 1),
    )
    space = SearchSpaceConfig(cells=args.cells)
    budget = args.budget if args.budget is not None else default_budget(macro, space)
    device = torch.device(args.device)
    batches = [b.to(device) for b in batches_cpu]
    print(f"device={device} threads={torch.get_num_threads()} data={data} batch={batch_size} score_batches={score_batches} T={args.timesteps} channels={channels} "
          f"head_hidden={hidden} stem_stride={macro.stem_stride} cells={args.cells} budget={budget} keep_freed_memory={kept} stack_bytes={args.stack_bytes}", flush=True)

    with compiled_inference():  # as spikenas search does, for every strategy (large layers only)
        results, logs = run_strategies(args, macro, space, batches, budget, device)

    (s, s_sec), (r, r_sec) = results["spikenas"], results["random"]

    def seconds_to(name: str) -> str:
        """Scoring seconds until ``name`` first scored a candidate at least as well as SpikeNAS."""
        elapsed = 0.0
        for record in logs[name].records:
            elapsed += record.seconds
            if record.stage != "final" and record.score >= s.score:
                return f"{elapsed:.2f}"
        return "never"

    evolution = ""
    if "evolution" in results:
        e, e_sec = results["evolution"]
        evolution = (f" evolution_score={e.score:.6g} evolution_seconds={e_sec:.1f} evolution_candidates={e.candidates}"
                     f" random_seconds_to_spikenas={seconds_to('random')} evolution_seconds_to_spikenas={seconds_to('evolution')}")
    extrapolated = ""
    if r.candidates != SNASNET_CANDIDATES:
        per_candidate = r_sec / r.candidates
        extrapolated = (f" random_seconds_per_candidate={per_candidate:.4g}"
                        f" speedup_at_5000={per_candidate * SNASNET_CANDIDATES / s_sec:.1f}")
    print(
        f"speedup={r_sec / s_sec:.1f} spikenas_score={s.score:.6g} random_score={r.score:.6g} "
        f"spikenas_bytes={s.bytes} random_bytes={r.bytes} budget_bytes={s.budget} "
        f"spikenas_candidates={s.candidates} random_candidates={r.candidates}{extrapolated}{evolution}"
    )


if __name__ == "__main__":
    sys.exit(main())
