"""``spikenas search``: assemble the search from the config, run it on the trainer's
processes, and write the results (rank 0 only).

Resume: the record log of a search lives in ``<logs>/.search_state/<key>.json``, where the key
hashes every setting that changes the result. Running the same command again after a crash
finds that state, replays the search against it and writes into the same run directory.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import lightning.pytorch as pl
import torch

from spikenas.base.errors import SpikenasError
from spikenas.base.rundir import DamagedState, check_run_dir, claim_run_dir, logs_root, run_lock, set_aside, settings_key
from spikenas.base.workers import Workers, launch
from spikenas.cost.synops import format_synops
from spikenas.evaluate import compiled_lif
from spikenas.export.support import restrict_space
from spikenas.export.targets import get_target
from spikenas.plugin import get_registries
from spikenas.search.by_trials import choose_by_trials
from spikenas.search.cell_search import SHARED_SETTINGS, build_context, make_strategy, search
from spikenas.search.joint import groups
from spikenas.search.outputs import write_outputs
from spikenas.search.records import RecordLog
from spikenas.search.result import SearchResult
from spikenas.search.settings import SearchSettings
from spikenas.search.trial_outputs import FILES, write_trial_outputs
from spikenas.space.macro import MacroConfig


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
    settings, batches, key, rule, neuron = _prepare(trainer, model, datamodule, settings)
    show_progress = trainer.progress_bar_callback is not None  # --trainer.enable_progress_bar false
    state_path = logs_root(trainer) / ".search_state" / f"{key}.json"
    config = config if config is not None else _config_from_objects(model, datamodule, trainer)
    config = {**config, "model": {**(config.get("model") or {}), "neuron": asdict(neuron)}}  # the neuron searched with
    with run_lock(state_path, "search", workers.is_writer):
        log, run_dir = _open_log(trainer, state_path, f"search:{key}", workers)
        try:
            if settings.choose == "trials":
                result, found, table, chosen = choose_by_trials(trainer, model, datamodule, settings, batches, log, key, workers,
                                                                 neuron)
                result = SearchResult(**{**result.__dict__, "run_dir": run_dir})
                if workers.is_writer:
                    _write(lambda: write_trial_outputs(result, found, table, chosen, run_dir, config), run_dir)
                    _finish(result, log, FILES)
            else:
                ctx, strategy = rule
                result = search(ctx, strategy, log, workers, show_progress)
                result = SearchResult(**{**result.__dict__, "run_dir": run_dir})
                if workers.is_writer:
                    _write(lambda: write_outputs(result, log, run_dir, config, getattr(ctx.memory.cost, "weight_bits", None),
                                                 _synops_table(ctx, result)), run_dir)
                    _finish(result, log, ("genotype.yaml", "final.yaml", "search.csv", "pareto.png", "memory.txt"))
                    nonfinite = sum(1 for r in log.records if not math.isfinite(r.score))
                    if nonfinite:
                        print(f"spikenas search: {nonfinite} candidates had a non-finite score (ranked last; see search.csv)")
        except BaseException:
            if workers.is_writer and run_dir.is_dir() and not any(run_dir.iterdir()):
                run_dir.rmdir()  # no result written: leave no empty run behind (a rerun makes it again)
            raise
    return result


def _prepare(trainer, model, datamodule, settings: SearchSettings) -> tuple[SearchSettings, list[torch.Tensor], str, Any, Any]:
    """Every setting checked (the space restricted to the export target's operations), the
    scoring batches drawn, the key of the settings, when the rule fixes the macro the context
    and strategy (else None: stage one builds one per macro), and the neuron searched with (the
    export target's, where it has its own: ``final.yaml`` records it, so ``fit`` trains it);
    nothing is written."""
    if datamodule is None:
        raise SpikenasError("search needs data: set 'data' in the config (e.g. class_path: spikenas.data.FashionMNIST)")
    settings.check()
    macro: MacroConfig = model.macro
    device = trainer.strategy.root_device
    seed = settings.search_seed
    neuron = model.neuron
    if settings.export_target is not None:  # only networks the target's toolchain runs, with its neurons
        neuron, adopted = get_target(settings.export_target).adopt_neuron(neuron)
        widest = dataclasses.replace(settings.space, cells=max(settings.space.cell_counts or [settings.space.cells]))
        space, notes = restrict_space(widest, settings.export_target, neuron, get_registries().operations, macro)
        for note in adopted + notes:
            print(f"spikenas search: {note}")
        settings = SearchSettings(**{**settings.__dict__, "space": dataclasses.replace(space, cells=settings.space.cells)})
    batches = [datamodule.sample_batch(settings.score_batch_size, seed + i).to(device) for i in range(settings.score_batches)]
    identity = {k: v for k, v in settings.as_dict().items() if k not in ("compile_lif", "stack_bytes")}  # equal spikes either way
    identity["space"] = {k: v for k, v in identity["space"].items() if v is not None or k in ("channels", "head_hidden", "head_pool")}
    if settings.choose == "rule":  # the keys of searches before choose existed stay the same
        identity.pop("choose"), identity.pop("trials")
    else:
        identity["trials"] = {k: v for k, v in identity["trials"].items() if k != "timeout"}  # a longer timeout resumes
    key = settings_key({
        **identity, "macro": macro.to_dict(), "neuron": asdict(neuron),
        "data": dict(getattr(datamodule, "hparams", {})), "datamodule": type(datamodule).__qualname__,
    })
    if settings.choose == "trials":
        groups(settings, macro)  # a cost model that cannot count the precisions: one line, before any output
        return settings, batches, key, None, neuron
    ctx = build_context(
        macro, neuron, settings.space, batches, settings.budget, settings.score, settings.score_options,
        settings.cost_model, settings.cost_options, seed, settings.channels_last, settings.stack_limit(),
    )
    strategy = make_strategy(settings.strategy, settings.strategy_options, **{k: getattr(settings, k) for k in SHARED_SETTINGS})
    return settings, batches, key, (ctx, strategy), neuron


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
    groups = log.meta.get("groups") or {}
    if (log.resumed or groups) and workers.is_writer:
        done = f"{log.resumed} candidates already scored" if log.resumed else f"{len(groups)} combinations already searched"
        print(f"spikenas search: resuming from {state_path} ({done})")
    return log, Path(meta["run_dir"])


def _write(write, run_dir: Path) -> None:
    """Call ``write`` (the result set); a full disk or a read-only file system in one line."""
    try:
        write()
    except OSError as exc:  # the state keeps every score
        raise SpikenasError(f"cannot write the results to {run_dir}: {exc.strerror or exc}; no result file was written and "
                            "the scored candidates are kept, so the same command writes them once this is fixed") from None


def _finish(result: SearchResult, log: RecordLog, files: tuple[str, ...]) -> None:
    """Mark the state complete and say what was found (rank 0)."""
    log.meta["complete"] = True
    log.save()
    m = result.macro
    print(f"spikenas search: macro channels={m.channels} head_hidden={m.head_hidden} head_pool={m.head_pool} "
          f"timesteps={m.timesteps}" + (f" weight_bits={result.weight_bits}" if result.weight_bits is not None else "")
          + " (fitted to the budget)")
    print(f"spikenas search: wrote {result.run_dir}/{{{','.join(files)}}}")
    print(f"spikenas search: retrain with: spikenas fit --config {result.run_dir / 'final.yaml'}")
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
