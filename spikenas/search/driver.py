"""``spikenas search``: assemble the search from the config, run it on the trainer's
processes, and write the results (rank 0 only).

Resume: the record log of a search lives in ``<logs>/.search_state/<key>.json``, where the key
hashes every setting that changes the result. Running the same command again after a crash
finds that state, replays the search against it and writes into the same run directory.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import lightning.pytorch as pl
import torch

from spikenas.base.errors import SpikenasError
from spikenas.plugin import get_registries
from spikenas.base.rundir import DamagedState, check_run_dir, claim_run_dir, logs_root, run_lock, set_aside, settings_key
from spikenas.export.targets import get_target, restrict_space
from spikenas.space.config import SearchSpaceConfig
from spikenas.evaluate import ScoringEngine, compiled_lif, ranks_whole_networks_only
from spikenas.evaluate.stacked_tail import STACK_BYTES
from spikenas.search.context import MemoryCheck, SearchContext, choose_macro, synops_unreachable
from spikenas.cost.limits import parse_limits
from spikenas.search.outputs import write_outputs
from spikenas.search.records import RecordLog
from spikenas.search.result import SearchResult
from spikenas.search.settings import SearchSettings
from spikenas.search.strategy import Evaluator, Found, SearchStrategy
from spikenas.base.workers import Workers, launch
from spikenas.space.cell import CellSpace
from spikenas.space.macro import MacroConfig
from spikenas.space.genotype import Genotype
from spikenas.network.profile import Profiler, activation_bytes, check_fits_in_memory
from spikenas.cost.synops import format_synops

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
) -> SearchContext:
    """A :class:`SearchContext` from plain settings (``neuron``: the network's neuron settings,
    for the scoring engine); the macro is fitted to the limits
    (``budget``: a size, or named limits such as ``{memory: 256KiB, synops: 2e6}``; see
    :mod:`spikenas.cost.limits`). ``channels_last``: networks and batches are scored in the
    channels-last memory layout. ``stack_bytes``: input bytes the part after a cell may take
    for several candidates at once (0: one at a time)."""
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

    macro = choose_macro(macro, space, neuron, registries, cells, cost, limits.bytes, synops_limit=limits.synops, synops_of=synops_of)
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
    if not ctx.within_synops(final.synops):
        raise synops_unreachable(ctx, log, f"{strategy.name} search")
    return SearchResult(
        genotype, ctx.macro, strategy.name, ctx.engine.score.name, final.score, report.total_bytes,
        ctx.budget, evaluator.evaluated, seconds, report, synops=final.synops, synops_limit=ctx.synops_limit,
    )


def run_search(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    datamodule: Optional[pl.LightningDataModule] = None,
    config: Optional[dict[str, Any]] = None,
    settings: SearchSettings | None = None,
    **values: Any,
) -> SearchResult:
    """The ``search`` subcommand: ``settings``, or a :class:`SearchSettings` of ``values``
    (see :meth:`spikenas.app.trainer.Trainer.search` for each); ``config``: the command's whole
    config as plain data (the base of ``final.yaml``; from the model and data when None)."""
    settings = settings or SearchSettings.of(**values)
    with compiled_lif(settings.compile_lif):
        return launch(trainer, "search", _run, trainer, model, datamodule, config, settings)


def _run(trainer, model, datamodule, config, settings) -> SearchResult:
    """The search on this process: check and assemble everything, then (holding the lock of
    this configuration's state) open the record log, search, and write the results."""
    trainer.strategy.setup_environment()
    workers = Workers.current()
    ctx, strategy, key, neuron = _prepare(trainer, model, datamodule, settings)
    show_progress = trainer.progress_bar_callback is not None  # --trainer.enable_progress_bar false
    state_path = logs_root(trainer) / ".search_state" / f"{key}.json"
    with run_lock(state_path, "search", workers.is_writer):
        log, run_dir = _open_log(trainer, state_path, f"search:{key}", workers)
        try:
            result = search(ctx, strategy, log, workers, show_progress)
            result = SearchResult(**{**result.__dict__, "run_dir": run_dir})
            if workers.is_writer:
                config = config if config is not None else _config_from_objects(model, datamodule, trainer)
                _finish(result, log, ctx, {**config, "model": {**(config.get("model") or {}), "neuron": asdict(neuron)}})
        except BaseException:
            if workers.is_writer and run_dir.is_dir() and not any(run_dir.iterdir()):
                run_dir.rmdir()  # no result written: leave no empty run behind (a rerun makes it again)
            raise
    return result


def _prepare(trainer, model, datamodule, settings: SearchSettings) -> tuple[SearchContext, SearchStrategy, str, object]:
    """Every setting checked, the scoring batches drawn, the context and the strategy built, the
    key of the settings, and the neuron searched with (the export target's, where it has its
    own: ``final.yaml`` records it, so ``fit`` trains it); nothing is written."""
    if datamodule is None:
        raise SpikenasError("search needs data: set 'data' in the config (e.g. class_path: spikenas.data.FashionMNIST)")
    settings.check()
    macro: MacroConfig = model.macro
    neuron: NeuronConfig = model.neuron
    device = trainer.strategy.root_device
    seed = settings.search_seed
    space = settings.space
    if settings.export_target is not None:  # only networks the target's toolchain runs, with its neurons
        neuron, adopted = get_target(settings.export_target).adopt_neuron(neuron)
        space, notes = restrict_space(space, settings.export_target, neuron, get_registries().operations)
        for note in adopted + notes:
            print(f"spikenas search: {note}")
    batches = [datamodule.sample_batch(settings.score_batch_size, seed + i).to(device) for i in range(settings.score_batches)]
    ctx = build_context(
        macro, neuron, space, batches, settings.budget, settings.score, settings.score_options,
        settings.cost_model, settings.cost_options, seed, settings.channels_last, settings.stack_limit(),
    )
    strategy = make_strategy(settings.strategy, settings.strategy_options,
                             **{k: getattr(settings, k) for k in SHARED_SETTINGS})
    key = settings_key({
        **{k: v for k, v in settings.as_dict().items() if k not in ("compile_lif", "stack_bytes")},  # equal spikes either way
        "macro": macro.to_dict(), "neuron": asdict(neuron),
        "data": dict(getattr(datamodule, "hparams", {})), "datamodule": type(datamodule).__qualname__,
    })
    return ctx, strategy, key, neuron


def _open_log(trainer, state_path: Path, owner: str, workers: Workers) -> tuple[RecordLog, Path]:
    """The record log and run directory: an unfinished run's (resume: only into the directory
    ``owner``, this state's ``search:<key>``, claimed), else a new run directory claimed for
    ``owner``. A damaged state is moved aside, saying so."""
    meta = None
    if workers.is_writer:
        root = logs_root(trainer)
        try:
            previous = RecordLog(state_path) if state_path.exists() or state_path.is_symlink() else None
            if previous is not None and not previous.meta.get("complete"):
                check_run_dir(previous.meta.get("run_dir"), root, owner)
        except (DamagedState, OSError) as exc:  # damaged by hand or by disk
            set_aside(state_path, "search", exc if isinstance(exc, DamagedState) else exc.strerror or type(exc).__name__)
            previous = None
        if previous is not None and not previous.meta.get("complete"):
            meta = previous.meta
        else:
            state_path.unlink(missing_ok=True)
            meta = {"run_dir": str(claim_run_dir(trainer, root, owner))}
    meta = workers.broadcast(meta)
    log = RecordLog(state_path, meta)
    if log.resumed and workers.is_writer:
        print(f"spikenas search: resuming from {state_path} ({log.resumed} candidates already scored)")
    return log, Path(meta["run_dir"])


def _finish(result: SearchResult, log: RecordLog, ctx: SearchContext, search_config: dict[str, Any]) -> None:
    """Write the results, mark the state complete, and say what was found (rank 0)."""
    run_dir = result.run_dir
    try:
        write_outputs(result, log, run_dir, search_config, getattr(ctx.memory.cost, "weight_bits", None), _synops_table(ctx, result))
    except OSError as exc:  # a full disk, a read-only file system: the state keeps every score
        raise SpikenasError(f"cannot write the results to {run_dir}: {exc.strerror or exc}; no result file was written and "
                            "the scored candidates are kept, so the same command writes them once this is fixed") from None
    log.meta["complete"] = True
    log.save()
    m = result.macro
    print(f"spikenas search: macro channels={m.channels} head_hidden={m.head_hidden} head_pool={m.head_pool} (fitted to the budget)")
    nonfinite = sum(1 for r in log.records if not math.isfinite(r.score))
    if nonfinite:
        print(f"spikenas search: {nonfinite} candidates had a non-finite score (ranked last; see search.csv)")
    print(f"spikenas search: wrote {run_dir}/{{genotype.yaml,final.yaml,search.csv,pareto.png,memory.txt}}")
    print(f"spikenas search: retrain with: spikenas fit --config {run_dir / 'final.yaml'}")
    print(f"spikenas search: {result.summary()}")


def _synops_table(ctx, result) -> str:
    """The found network's SynOps per layer, measured as it was scored: at initialisation, on
    the scoring batches, batch norm on batch statistics."""
    synops = ctx.engine.synops_by_layer(result.genotype)
    images = sum(len(b) for b in ctx.engine.batches)
    note = f"one inference, T = {result.macro.timesteps}: spikes x fan-out at initialisation, mean over {images} scoring images"
    return format_synops(synops, [layer.name for layer in result.report.layers], note)


def _config_from_objects(model: pl.LightningModule, datamodule: pl.LightningDataModule, trainer: pl.Trainer) -> dict[str, Any]:
    """A fit config for a search started from Python rather than from the CLI."""
    data_cls = type(datamodule)
    return {
        "model": {"macro": model.macro.to_dict(), "neuron": asdict(model.neuron)},
        "data": {"class_path": f"{data_cls.__module__}.{data_cls.__qualname__}", "init_args": dict(datamodule.hparams)},
        "trainer": {"max_epochs": trainer.max_epochs},
    }
