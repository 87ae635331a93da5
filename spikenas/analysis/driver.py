"""``spikenas analyze``: plan every network, train each with the proxy recipe, write the tables.

Order: settings are checked, the plan is made (including the cell-count searches) and the
proxy recipe is checked before any network trains, so bad input fails in seconds. Under a
Lightning DDP strategy every rank plans the same networks, trains every ``world``-th one and
gathers the rows on rank 0, the only writer. Resume: the run's state lives in
``<logs>/.analyze_state/<key>.json``; rerunning the same command after a stop continues in the
same run directory and trains only the networks missing from its ``networks.csv``.
"""

from __future__ import annotations

import datetime
import functools
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import lightning.pytorch as pl
from tqdm import tqdm

from spikenas.analysis.networks import NetworkTable, TrainedNetwork
from spikenas.analysis.outputs import AnalysisTables, compute_tables, summary_line, write_tables
from spikenas.analysis.plan import Plan, Planner, PlannedNetwork
from spikenas.analysis.proxy import ProxyTrainer, ranked_scores
from spikenas.analysis.report import write_report
from spikenas.analysis.settings import ProxyRecipe, Studies
from spikenas.search.settings import SearchSettings
from spikenas.base.errors import SpikenasError
from spikenas.base.files import output_set
from spikenas.plugin import get_registries
from spikenas.base.rundir import DamagedState, claim_run_dir, logs_root, read_state, run_lock, set_aside, settings_key, state_path, write_state
from spikenas.space.config import SearchSpaceConfig
from spikenas.base.workers import Workers, launch
from spikenas.base.units import format_bytes, parse_bytes


@dataclass(frozen=True)
class AnalysisResult:
    """A finished analysis: its run directory, tables and summary line."""

    run_dir: Path
    tables: AnalysisTables
    rows: list[TrainedNetwork]
    summary: str


def describe(obj: Any) -> str:
    """A process-independent description of a factory (for the resume key of an analysis
    started from Python; the CLI's config describes it otherwise)."""
    if isinstance(obj, functools.partial):
        args = [a if isinstance(a, (int, float, str, bool, type(None))) else describe(a) for a in obj.args]
        keywords = {k: v if isinstance(v, (int, float, str, bool, type(None))) else describe(v) for k, v in obj.keywords.items()}
        return f"{describe(obj.func)}{args}{sorted(keywords.items())}"
    name = getattr(obj, "__qualname__", type(obj).__qualname__)
    return f"{getattr(obj, '__module__', '')}.{name}"


ANALYSIS_SETTINGS = ("budget", "score", "score_options", "cost_model", "cost_options", "sweeps", "last_sweeps", "rerank",
                     "score_batch_size", "score_batches", "search_seed")
"""The search settings an analysis uses (beside ``space``): they identify its run for resuming."""


def run_analysis(trainer: pl.Trainer, model: pl.LightningModule, datamodule: Optional[pl.LightningDataModule] = None,
                 config: Optional[dict] = None, command: Optional[str] = None,
                 search: SearchSettings | dict | None = None, studies: Studies | dict | None = None,
                 proxy: ProxyRecipe | dict | None = None) -> AnalysisResult:
    """The ``analyze`` subcommand (see :meth:`spikenas.app.trainer.Trainer.analyze` for the
    settings: ``search`` as ``spikenas search`` takes them, ``studies``, ``proxy``); ``config``
    is the parsed CLI config (it identifies the run for resuming), ``command`` the command line
    that ``report.md`` quotes."""
    settings = _as(SearchSettings, search)
    return launch(trainer, "analyze", _run, trainer, model, datamodule, config, command, settings,
                  _as(Studies, studies), _as(ProxyRecipe, proxy))


def _as(cls: type, value: Any) -> Any:
    if value is None:
        return cls()
    if cls is SearchSettings:
        return SearchSettings.of(**value) if isinstance(value, dict) else value
    return cls(**value) if isinstance(value, dict) else value


def _run(trainer, model, datamodule, config, command, search: SearchSettings, studies: Studies,
         recipe: ProxyRecipe) -> AnalysisResult:
    start = time.perf_counter()
    trainer.strategy.setup_environment()
    workers = Workers.current()
    if datamodule is None:
        raise SpikenasError("analyze needs data: set 'data' in the config (e.g. class_path: spikenas.data.FashionMNIST)")
    search.check()
    space: SearchSpaceConfig = search.space
    studies, recipe = studies.check(), recipe.check()
    registries = get_registries()
    score_name = search.score
    score_options = {score_name: dict(search.score_options or {})}
    cost_name = search.cost_model
    cost = registries.cost_models.create(cost_name, **(search.cost_options or {}))
    scorer = registries.scores.create(score_name, **score_options[score_name])
    budget = parse_bytes(search.budget)
    seed = search.search_seed
    device = trainer.strategy.root_device
    batches = [datamodule.sample_batch(search.score_batch_size, seed + i).to(device) for i in range(search.score_batches)]

    # everything that can fail does so here, before any training
    proxy = ProxyTrainer(datamodule, recipe, model.neuron, registries, model.optimizer, model.label_smoothing,
                         model.memory_format, device)
    planner = Planner(model.macro, model.neuron, space, studies, registries, cost, budget, scorer, batches, seed,
                      search.sweeps, search.last_sweeps, search.rerank,
                      show_progress=trainer.progress_bar_callback is not None)  # --trainer.enable_progress_bar false
    plan = planner.plan(workers)
    score_names = ranked_scores(registries, score_options)  # sizes: the baselines rank by them

    identity = {k: v for k, v in (config or {}).items() if k not in ("trainer", "config")}
    key = settings_key({
        "settings": {k: v for k, v in search.as_dict().items() if k in ANALYSIS_SETTINGS},
        "space": asdict(space), "studies": asdict(studies), "proxy": asdict(recipe), "config": identity,
        "macro": model.macro.to_dict(), "neuron": asdict(model.neuron), "optimizer": describe(model.optimizer) if config is None else None,
        "data": dict(getattr(datamodule, "hparams", {})), "datamodule": type(datamodule).__qualname__,
        "operations": registries.operations.names(),  # not the scores: a resumed run measures new ones (seconds)
    })
    state_file, owner = state_path(trainer, "analyze", key), f"analyze:{key}"
    with run_lock(state_file, "analysis", workers.is_writer):  # the same analysis started twice: one line
        run_dir = state = None
        if workers.is_writer:
            try:
                state = read_state(state_file, logs_root(trainer), owner)
            except DamagedState as exc:
                set_aside(state_file, "analyze", exc)
                state = None
            if state is not None and (not state.get("complete") or (Path(state["run_dir"]) / "networks.csv").is_file()):
                run_dir = state["run_dir"]  # a finished one too: it trains nothing, measures the scores it lacks
            else:
                run_dir = str(claim_run_dir(trainer, logs_root(trainer), owner))
                write_state(state_file, {"run_dir": run_dir, "complete": False})
        run_dir = Path(workers.broadcast(run_dir))
        table = NetworkTable(run_dir / "networks.csv", score_names)
        done = table.load() if workers.is_writer else 0
        if workers.is_writer and done:
            print(f"spikenas analyze: resuming {run_dir} ({done} training runs already in networks.csv)")
            if state is not None and state.get("complete"):
                print("spikenas analyze: it is complete: nothing is trained again; scores registered since are "
                      "measured and its tables rewritten (any other setting, or removing the run, starts a new one)")
        measured: dict[str, tuple[dict[str, float], dict[str, float]]] = {}

        def measure(network: PlannedNetwork) -> tuple[dict[str, float], dict[str, float]]:
            if network.key not in measured:
                measured[network.key] = proxy.measure(network.genotype, network.macro, batches, seed, score_options, network.bytes)
            return measured[network.key]

        if workers.is_writer:  # rows trained before a score was registered: measure, never retrain
            incomplete = table.incomplete()
            for network in plan.networks:
                if network.key in incomplete:
                    table.measured(network.key, *measure(network))
            if incomplete:
                table.save()
        todo = workers.broadcast([(n, s) for n in plan.networks for s in recipe.seeds if not table.has(n.key, s)])

        runs = len(plan.networks) * len(recipe.seeds)
        quiet = not workers.is_writer or trainer.progress_bar_callback is None  # --trainer.enable_progress_bar false
        bar = tqdm(total=runs, initial=runs - len(todo), desc="spikenas analyze", disable=quiet, dynamic_ncols=True)
        def train(job: tuple[PlannedNetwork, int]) -> TrainedNetwork:
            network, net_seed = job
            scores, sizes = measure(network)
            result = proxy.train(network.genotype, network.macro, net_seed)
            m = network.macro
            return TrainedNetwork(
                tuple(network.roles), network.key, network.genotype.hash, str(network.genotype), len(network.genotype.cells),
                f"channels={m.channels} head_hidden={m.head_hidden} head_pool={m.head_pool} timesteps={m.timesteps}",
                network.bytes, scores, sizes, result.val_acc, result.test_acc, net_seed, result.steps,
                result.final_loss, result.seconds,
            )

        try:
            for i in range(0, len(todo), workers.world):
                rows = workers.map(todo[i:i + workers.world], train)
                if workers.is_writer:
                    for row in rows:
                        table.add(row)
                    table.save()
                    bar.update(len(rows))
                    bar.set_postfix(last=f"{rows[-1].test_acc:.3f}", refresh=False)
        finally:
            bar.close()

        tables = compute_tables(table.all(), plan, studies, list(space.operations), set(planner.full.connecting), score_names, space.cells)
        seconds = time.perf_counter() - start
        summary = summary_line(tables, len(plan.networks), seconds, score_name)
        if workers.is_writer:
            with output_set(run_dir) as staging:  # the tables, figures and report appear together or not at all
                write_tables(staging, tables, table.all(), score_names, shown_as=run_dir)
                write_report(staging / "report.md", tables, {
                    "command": command or "Trainer.analyze (Python API)",
                    "date": datetime.date.today().isoformat(), "device": _device_name(device),
                    "networks": len(plan.networks), "runs": runs, "seconds": seconds, "macro": _macro_text(plan),
                    "train_seconds": sum(row.seconds for row in table.all()),
                    "budget": "none" if budget is None else f"{budget:,} bytes ({format_bytes(budget)})",
                    "cost_model": cost_name, "recipe": recipe, "steps": proxy.steps, "batch_size": proxy.batch_size,
                    "score": score_name, "run_dir": run_dir, "stratum_fill": studies.stratum_fill,
                })
            write_state(state_file, {"run_dir": str(run_dir), "complete": True})
            print(f"spikenas analyze: wrote {run_dir}/{{networks.csv,report.md,enhanced_space.yaml,...}}")
            print(f"spikenas analyze: search the enhanced space with: spikenas search --config configs/search.yaml "
                  f"--config {run_dir / 'enhanced_space.yaml'}")
            print(f"spikenas analyze: {summary}")
        return AnalysisResult(run_dir, tables, table.all(), summary)


def _macro_text(plan: Plan) -> str:
    m = plan.macro
    return (f"channels={m.channels} (x{m.channel_multiplier} per cell), head_hidden={m.head_hidden}, "
            f"head_pool={m.head_pool}, timesteps={m.timesteps}, stem_stride={m.stem_stride}")


def _device_name(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads"
