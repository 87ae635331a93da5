"""``spikenas search --choose trials``: the whole budget searched, short trainings choose.

Stage one (:mod:`spikenas.search.joint`) searches the cells at every combination of precision,
cell count and time steps the space lists and keeps a few candidates; stage two
(:mod:`spikenas.search.trials`) trains them briefly through an Optuna study and keeps the
best. Both resume: stage one from the search's sealed state (group by group), stage two from
its study.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Sequence

import lightning.pytorch as pl
import torch

from spikenas.base.errors import SpikenasError
from spikenas.base.workers import Workers
from spikenas.cost.limits import parse_limits
from spikenas.network.profile import Profiler
from spikenas.plugin import get_registries
from spikenas.search.candidates import Candidate
from spikenas.search.joint import propose
from spikenas.search.records import RecordLog
from spikenas.search.result import SearchResult
from spikenas.search.settings import SearchSettings
from spikenas.search.trials import TrialRow, choose, run_trials
from spikenas.train.short_training import candidate_model, train_in_chunks


def chunking(settings: SearchSettings, datamodule: pl.LightningDataModule) -> tuple[int, int]:
    """``(chunk_batches, val_images)`` of every trial: ``trials.epochs`` of the training split
    in ``trials.chunks`` chunks, judged on ``trials.val_images`` validation images."""
    trials = settings.trials
    datamodule.setup("fit")
    if getattr(datamodule, "val_set", None) is None:
        raise SpikenasError("choose: trials judges candidates on a validation split: set data.val_split > 0 "
                            "(the test set stays unseen)")
    train_batches = math.ceil(len(datamodule.train_set) / int(datamodule.batch_size))
    chunk_batches = max(1, round(trials.epochs * train_batches / trials.chunks))
    return chunk_batches, min(trials.val_images or len(datamodule.val_set), len(datamodule.val_set))


def choose_by_trials(trainer: pl.Trainer, model, datamodule: pl.LightningDataModule, settings: SearchSettings,
                     batches: list[torch.Tensor], log: RecordLog, key: str, workers: Workers, neuron=None,
                     say: Callable[[str], None] = print) -> tuple[SearchResult, list[Candidate], list[TrialRow], TrialRow]:
    """Both stages; ``(result, every stage-one network, the trials' table, the chosen row)``.
    ``log.meta`` keeps stage one's groups (resume); the study lives in ``log.meta["run_dir"]``
    unless ``trials.storage`` names one. ``neuron``: the neuron settings searched and trained
    with (None: the model's)."""
    if workers.world > 1:
        raise SpikenasError("choose: trials trains its candidates one process per worker: run it with trainer.devices 1 "
                            "and add workers through trials.storage (docs/search.md)")
    start = time.perf_counter()
    neuron = neuron if neuron is not None else model.neuron
    groups = log.meta.setdefault("groups", {})
    kept = propose(settings, model.macro, neuron, batches, workers, groups, log.save, say)
    found = [Candidate.from_dict(item) for items in groups.values() for item in items]
    stage_one = time.perf_counter() - start
    trials = settings.trials
    chunk_batches, val_images = chunking(settings, datamodule)
    say(f"spikenas search: stage one took {stage_one:.1f} s ({len(found)} networks searched); {len(kept)} candidates go to "
        f"short trainings: at most {trials.epochs:g} epochs each in {trials.chunks} chunks of {chunk_batches} batches, "
        f"judged on {val_images} validation images after {', '.join(map(str, trials.rung_chunks))} chunks (the rungs), "
        f"successive halving by {trials.reduction_factor}")
    budget = parse_limits(settings.budget, settings.cost_model).bytes
    seed = settings.search_seed if trials.seed is None else trials.seed
    device = trainer.strategy.root_device

    def train(candidate: Candidate, callbacks: Sequence[pl.Callback]) -> float:
        network = candidate_model(model, candidate.genotype, candidate.macro, candidate.weight_bits, seed, budget,
                                  cost_options(settings, candidate), neuron)
        return train_in_chunks(network, datamodule, trials.chunks, chunk_batches, val_images, seed, device, callbacks,
                               validate_after=trials.rung_chunks)

    table = run_trials(kept, trials, train, Path(log.meta["run_dir"]), trials.study_name or f"spikenas-{key}", seed, say)
    chosen = choose(table)
    c = chosen.candidate
    options = cost_options(settings, c)
    registries = get_registries()
    report = registries.cost_models.create(settings.cost_model, **options)(
        Profiler(c.macro, neuron, registries.operations).profile(c.genotype))
    result = SearchResult(c.genotype, c.macro, f"{settings.strategy}+trials", "val_acc", chosen.last, report.total_bytes,
                          budget, len(found), time.perf_counter() - start, report,
                          weight_bits=c.weight_bits, cost_options=options)
    return result, found, table, chosen


def cost_options(settings: SearchSettings, candidate: Candidate) -> dict:
    """The cost model's options for ``candidate``: the search's, at the candidate's precision
    when the space chooses it."""
    options = dict(settings.cost_options or {})
    if settings.space.weight_bits:
        options["weight_bits"] = candidate.weight_bits
    return options
