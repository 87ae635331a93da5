"""Stage one of a search that chooses by trials: the cells searched at every macro the space lists,
and the few candidates a training-free filter keeps.

The joint space is every combination of weight precision (``space.weight_bits``), cell count
(``space.cell_counts``) and time steps (``space.timesteps``): a *group*. In each group the
width and head (``space.channels``, ``head_hidden``, ``head_pool``) are fitted to the budget by
SpikeNAS's rule once per ``trials.headrooms`` value (the share of the budget left to the
cells), and the strategy searches the cells at each of those macros, under the exact cost of
the group's precision. The filter then keeps, per group, the network with the most parameters
(size ranks trained accuracy better than any training-free score measured, ``docs/analysis.md``;
scores are not comparable across macros), and at most ``trials.keep`` groups' networks, most
parameters first. Short trainings choose among those (:mod:`spikenas.search.trials`).
``trials.filter: random`` draws as many at random from all of stage one's networks instead
(the control for the filter).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable

import torch

from spikenas.base.errors import SpikenasError
from spikenas.base.workers import Workers
from spikenas.plugin import get_registries
from spikenas.search.candidates import Candidate
from spikenas.search.cell_search import SHARED_SETTINGS, build_context, make_strategy, search
from spikenas.search.context import BudgetError
from spikenas.search.records import RecordLog
from spikenas.search.settings import SearchSettings
from spikenas.space.macro import MacroConfig

Say = Callable[[str], None]


def groups(settings: SearchSettings, macro: MacroConfig) -> list[tuple[int, int, int]]:
    """``(weight_bits, cells, timesteps)`` of every group, in a fixed order; a one-line error
    when the space lists precisions that the cost model does not count."""
    space = settings.space
    cost = get_registries().cost_models.create(settings.cost_model, **(settings.cost_options or {}))
    counted = getattr(cost, "weight_bits", None)
    if space.weight_bits and counted is None:
        raise SpikenasError(f"space.weight_bits needs a cost model that counts weight bits (e.g. memory); "
                            f"cost model {settings.cost_model!r} does not")
    bits = sorted(set(space.weight_bits or [counted or 32]))
    cells = sorted(set(space.cell_counts or [space.cells]))
    steps = sorted(set(space.timesteps or [macro.timesteps]))
    return list(itertools.product(bits, cells, steps))


def _group_label(bits: int, cells: int, steps: int) -> str:
    return f"{bits}-bit, {cells} cell{'s' if cells > 1 else ''}, T={steps}"


def search_group(group: tuple[int, int, int], settings: SearchSettings, macro: MacroConfig, neuron: object,
                 batches: list[torch.Tensor], workers: Workers) -> list[Candidate]:
    """The network the strategy finds at each macro the rule fits to the budget in ``group``,
    one per distinct macro of ``trials.headrooms`` (none when nothing of the group fits)."""
    bits, cells, steps = group
    space = dataclasses.replace(settings.space, cells=cells, cell_counts=None, timesteps=None, weight_bits=None)
    options = dict(settings.cost_options or {})
    if settings.space.weight_bits:
        options["weight_bits"] = bits
    found: dict[MacroConfig, Candidate] = {}
    for headroom in settings.trials.headrooms:
        try:
            ctx = build_context(macro.replace(timesteps=steps), neuron, space, batches, settings.budget, settings.score,
                                settings.score_options, settings.cost_model, options, settings.search_seed,
                                settings.channels_last, settings.stack_limit(), headroom)
        except BudgetError:
            return list(found.values())
        if ctx.macro in found:
            continue
        strategy = make_strategy(settings.strategy, settings.strategy_options,
                                 **{k: getattr(settings, k) for k in SHARED_SETTINGS})
        try:
            result = search(ctx, strategy, RecordLog(), workers, show_progress=False)
        except BudgetError:  # e.g. no network of this macro within a SynOps limit
            continue
        params = ctx.memory.profiler.profile(result.genotype).params
        found[ctx.macro] = Candidate(ctx.macro, result.genotype, bits, result.bytes, params, result.score, headroom)
    return list(found.values())


def propose(settings: SearchSettings, macro: MacroConfig, neuron: object, batches: list[torch.Tensor],
            workers: Workers, done: dict[str, Any], save: Callable[[], None], say: Say) -> list[Candidate]:
    """The candidates the filter keeps, most parameters first (see the module's docstring).

    ``done`` maps a group's label to its candidates' ``to_dict`` forms: groups already searched
    (a resumed search) are taken from it, and each newly searched group is added and ``save``
    called, so a stopped search loses at most one group."""
    kept: list[Candidate] = []
    everything: list[Candidate] = []
    for group in groups(settings, macro):
        label = _group_label(*group)
        if label in done:
            found = [Candidate.from_dict(item) for item in done[label]]
        else:
            found = search_group(group, settings, macro, neuron, batches, workers)
            done[label] = [c.to_dict() for c in found]
            save()
        if not found:
            say(f"spikenas search: {label}: no network fits the budget")
            continue
        everything.extend(found)
        best = max(found, key=lambda c: (c.params, c.score))
        for candidate in found:
            verdict = "kept (most parameters of its group)" if candidate is best else "dropped (fewer parameters)"
            say(f"spikenas search: {label}: headroom {candidate.headroom:g} -> {candidate.describe()}"
                + (f": {verdict}" if settings.trials.filter == "size" else ""))
        kept.append(best)
    if not kept:
        raise BudgetError(f"no network of any combination fits the budget {settings.budget!r} "
                          f"({len(groups(settings, macro))} combinations of precision, cells and time steps tried)")
    limit = settings.trials.keep or len(kept)
    if settings.trials.filter == "random":
        order = torch.randperm(len(everything), generator=torch.Generator().manual_seed(settings.search_seed)).tolist()
        drawn = [everything[i] for i in order[:limit]]
        say(f"spikenas search: filter random: {len(drawn)} of the {len(everything)} networks drawn at random")
        return drawn
    kept.sort(key=lambda c: -c.params)
    for candidate in kept[limit:]:
        say(f"spikenas search: dropped {candidate.describe()} (trials.keep {limit}: fewer parameters than those kept)")
    return kept[:limit]
