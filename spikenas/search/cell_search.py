"""One search of the cells at one macro: the context built from plain settings, a strategy by
name, and the run that scores its pick on the whole network.

``spikenas search`` (:mod:`spikenas.search.driver`) runs one of these when the macro is fixed by
the rule, and one per macro when short trainings choose (:mod:`spikenas.search.joint`).
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Optional

import torch

from spikenas.base.errors import SpikenasError
from spikenas.base.workers import Workers
from spikenas.cost.limits import parse_limits
from spikenas.evaluate import ScoringEngine, ranks_whole_networks_only
from spikenas.evaluate.stacked_tail import STACK_BYTES
from spikenas.network.profile import Profiler, activation_bytes, check_fits_in_memory
from spikenas.plugin import get_registries
from spikenas.search.context import MemoryCheck, SearchContext, choose_macro, synops_unreachable
from spikenas.search.records import RecordLog
from spikenas.search.result import SearchResult
from spikenas.search.strategy import Evaluator, Found, SearchStrategy
from spikenas.space.cell import CellSpace
from spikenas.space.config import SearchSpaceConfig
from spikenas.space.genotype import Genotype
from spikenas.space.macro import MacroConfig

SHARED_SETTINGS = ("candidates", "sweeps", "last_sweeps", "rerank")


def make_strategy(name: str, options: Optional[dict[str, Any]] = None, **shared: Any) -> SearchStrategy:
    """The registered strategy ``name``, built with ``options`` (``strategy_options``) plus those
    of the shared settings (``candidates``, ``sweeps``, ``last_sweeps``, ``rerank``) that its
    factory's signature names; an unknown name or option is a one-line error."""
    registry = get_registries().strategies
    factory = registry.get(name)
    try:
        accepted = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        accepted = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    chosen = {k: v for k, v in shared.items() if k in SHARED_SETTINGS and (takes_all or k in accepted)}
    strategy = registry.create(name, **{**chosen, **(options or {})})
    if not isinstance(strategy, SearchStrategy):
        plugin = registry.entry(name).plugin
        raise SpikenasError(f"strategy {name!r} (plugin {plugin!r}) built a {type(strategy).__name__}, not a SearchStrategy")
    return strategy


def build_context(
    macro: MacroConfig,
    neuron: object,
    space: SearchSpaceConfig,
    batches: list[torch.Tensor],
    budget: int | str | dict | None = None,
    score: str = "sahd",
    score_options: Optional[dict[str, Any]] = None,
    cost_model: str = "memory",
    cost_options: Optional[dict[str, Any]] = None,
    seed: int = 0,
    channels_last: bool = True,
    stack_bytes: int = STACK_BYTES,
    headroom: float = 0.5,
) -> SearchContext:
    """A :class:`SearchContext` from plain settings (``neuron``: the network's neuron settings,
    for the scoring engine); the macro is fitted to the limits
    (``budget``: a size, or named limits such as ``{memory: 256KiB, synops: 2e6}``; see
    :mod:`spikenas.cost.limits`). ``channels_last``: networks and batches are scored in the
    channels-last memory layout. ``stack_bytes``: input bytes the part after a cell may take
    for several candidates at once (0: one at a time). ``headroom``: the share of every limit the
    macro leaves to the cells (:func:`~spikenas.search.context.choose_macro`)."""
    registries = get_registries()
    space.check()
    cells = CellSpace(space.operations, registries.operations, space.nodes, space.backward, space.direct_edge)
    cost = registries.cost_models.create(cost_model, **(cost_options or {}))
    scorer = registries.scores.create(score, **(score_options or {}))
    limits = parse_limits(budget, cost_model)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    batches = [b.contiguous(memory_format=layout) if b.dim() == 4 else b for b in batches]

    def engine_for(candidate: MacroConfig, memory: MemoryCheck) -> ScoringEngine:
        return ScoringEngine(candidate, space.cells, neuron, registries.operations, scorer, batches, seed,
                             complete=lambda prefix: memory.cheapest(cells, space.cells, prefix), bytes_of=memory.bytes_of,
                             count_synops=limits.synops is not None, memory_format=layout, stack_bytes=stack_bytes)

    if limits.synops is not None and ranks_whole_networks_only(scorer):
        raise SpikenasError(f"score {score!r} ranks whole networks without counting their spikes, so it measures "
                            "no SynOps: search with a SynOps limit using a spike-kernel score (e.g. --score sahd)")

    def synops_of(candidate: MacroConfig, genotype: Genotype) -> float:  # the macro's cheapest network, measured
        params = Profiler(candidate, neuron, registries.operations).profile(genotype).params
        check_fits_in_memory(params, f"the cheapest network at macro channels={candidate.channels} (lower space.channels)")
        engine = engine_for(candidate, MemoryCheck(candidate, neuron, registries, cost, None))
        return engine.assess(genotype).synops or 0.0

    macro = choose_macro(macro, space, neuron, registries, cells, cost, limits.bytes, headroom, limits.synops, synops_of)
    memory = MemoryCheck(macro, neuron, registries, cost, limits.bytes)
    profiles = [memory.profiler.profile(g) for g in memory.largest(cells, space.cells)]
    widest = max(layer.neurons for p in profiles for part in p.layers for layer in part.hardware)  # one LIF layer's
    scored = activation_bytes(widest, macro.timesteps, max(len(b) for b in batches), training=False)
    check_fits_in_memory(max(p.params for p in profiles), f"the largest network of the space (macro channels={macro.channels}, "
                         f"head_hidden={macro.head_hidden}, timesteps={macro.timesteps}, scored on {len(batches[0])} images; "
                         "lower space.channels, space.head_hidden or score_batch_size)", scored)
    return SearchContext(macro, cells, space.cells, memory, engine_for(macro, memory), seed, limits.synops)


def search(ctx: SearchContext, strategy: SearchStrategy, log: RecordLog | None = None, workers: Workers | None = None,
           show_progress: bool = True) -> SearchResult:
    """Run ``strategy`` and score its genotype on the whole network."""
    log = log if log is not None else RecordLog()
    workers = workers or Workers.current()
    evaluator = Evaluator(ctx, log, workers, show_progress)
    start = time.perf_counter()
    try:
        found = strategy.run(ctx, evaluator)
        if not isinstance(found, Found):
            raise SpikenasError(f"strategy {strategy.name!r} returned a {type(found).__name__}, not a "
                                "spikenas.search.strategy.Found")
        final = evaluator.record_final(found)
    finally:
        evaluator.close()
        if workers.is_writer:
            log.save()
    genotype = found.genotype
    seconds = time.perf_counter() - start
    report = ctx.memory.cost(ctx.memory.profiler.profile(genotype))
    if ctx.budget is not None and report.total_bytes > ctx.budget:  # built-in strategies never do this; a plugin may
        raise SpikenasError(f"strategy {strategy.name!r} returned a network of {report.total_bytes:,} bytes, over the "
                            f"budget of {ctx.budget:,} bytes")
    if getattr(report, "refusal", None) is not None:
        raise SpikenasError(f"strategy {strategy.name!r} returned a network that does not run on the hardware of cost "
                            f"model {report.model!r}: {report.refusal}")
    if not ctx.within_synops(final.synops):
        raise synops_unreachable(ctx, log, f"{strategy.name} search")
    return SearchResult(
        genotype, ctx.macro, strategy.name, ctx.engine.score.name, final.score, report.total_bytes,
        ctx.budget, evaluator.evaluated, seconds, report, synops=final.synops, synops_limit=ctx.synops_limit,
    )
