"""The search driver and its strategies: budgets that always hold, far fewer candidates, resume."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikenas import CellGenotype, Genotype
from spikenas.plugin import hookimpl
from spikenas.score.sahd import SAHD
from spikenas.space.config import SearchSpaceConfig
from spikenas.search.context import BudgetError
from spikenas.search.cell_search import build_context, search
from spikenas.evaluate.incremental import CellEvaluator
from spikenas.search.evolution import EvolutionSearch
from spikenas.search.random_search import RandomSearch
from spikenas.search.records import RecordLog
from spikenas.search.consecutive import SpikeNASSearch
from spikenas.plugin.testing import temporary_plugin


@pytest.fixture
def images(tiny_macro):
    return torch.randn(12, *tiny_macro.input_shape, generator=torch.Generator().manual_seed(3))


def make_ctx(tiny_macro, neuron, images, budget=None, cells=2, backward=False, **kw):
    space = SearchSpaceConfig(cells=cells, backward=backward)
    return build_context(tiny_macro, neuron, space, [images], budget=budget, **kw)


def test_impossible_budget_states_smallest_footprint(tiny_macro, neuron, images):
    ctx = make_ctx(tiny_macro, neuron, images)
    smallest = ctx.bytes_of(ctx.memory.cheapest(ctx.cells, 2))
    with pytest.raises(BudgetError) as error:
        make_ctx(tiny_macro, neuron, images, budget=smallest - 1)
    message = str(error.value)
    assert "\n" not in message
    assert f"smallest reachable footprint {smallest:,} bytes" in message


def test_budget_with_units_is_parsed(tiny_macro, neuron, images):
    assert make_ctx(tiny_macro, neuron, images, budget="2MiB").budget == 2 * 1024 * 1024
    assert make_ctx(tiny_macro, neuron, images, budget="500KB").budget == 500_000


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0.0, 1.0), strategy=st.sampled_from(["spikenas", "random", "evolution"]), seed=st.integers(0, 3))
def test_budget_is_never_exceeded(tiny_macro, neuron, images, fraction, strategy, seed):
    probe = make_ctx(tiny_macro, neuron, images)
    low = probe.bytes_of(probe.memory.cheapest(probe.cells, 2))
    high = probe.bytes_of(Genotype(tuple(
        CellGenotype.from_ops(4, [("conv3x3", i, j) for i, j in probe.cells.pairs]) for _ in range(2)
    )))
    budget = int(low + fraction * (high - low))
    ctx = make_ctx(tiny_macro, neuron, images, budget=budget, seed=seed)
    chooser = {"spikenas": lambda: SpikeNASSearch(sweeps=1), "random": lambda: RandomSearch(candidates=6),
               "evolution": lambda: EvolutionSearch(candidates=8, population=3, sample_size=2)}[strategy]()
    log = RecordLog()
    result = search(ctx, chooser, log)
    assert result.bytes <= budget
    assert ctx.bytes_of(result.genotype) == result.bytes
    assert all(record.bytes <= budget for record in log.records)


def test_spikenas_scores_far_fewer_candidates_and_reports_them(tiny_macro, neuron, images):
    ctx = make_ctx(tiny_macro, neuron, images)
    log = RecordLog()
    result = search(ctx, SpikeNASSearch(sweeps=1), log)
    # 6 pairs x 4 alternatives per pass, 1 pass on cell 0 and 2 on cell 1, 3 re-ranked, 1 start each
    assert result.candidates == len(log.records) - 1 <= 6 * 4 * 3 + 3 + 2  # "final" reuses a score
    assert {r.stage for r in log.records} == {"cell0", "cell0/whole", "cell1", "final"}
    assert result.score == log.get("final").score


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("strategy", ["spikenas", "random", "evolution"])
def test_resumed_search_ends_with_the_uninterrupted_genotype(tiny_macro, neuron, images, tmp_path, strategy):
    def chooser():
        return {"spikenas": lambda: SpikeNASSearch(sweeps=2), "random": lambda: RandomSearch(candidates=40, chunk=8),
                "evolution": lambda: EvolutionSearch(candidates=30, population=6, sample_size=3)}[strategy]()

    reference = search(make_ctx(tiny_macro, neuron, images), chooser())

    state = tmp_path / "state.json"
    ctx = make_ctx(tiny_macro, neuron, images)
    calls = {"n": 0}
    real_assess, real_assess_many, real_evaluate = ctx.engine.assess, ctx.engine.assess_many, CellEvaluator._evaluate

    def interrupting(fn, candidates):
        def wrapped(*args, **kwargs):
            calls["n"] += candidates(args)
            if calls["n"] > 10:
                raise _Interrupt
            return fn(*args, **kwargs)
        return wrapped

    ctx.engine.assess = interrupting(real_assess, lambda args: 1)
    ctx.engine.assess_many = interrupting(real_assess_many, lambda args: len(args[0]))
    CellEvaluator._evaluate = interrupting(real_evaluate, lambda args: len(args[1]))  # (self, cells, ...)
    try:
        with pytest.raises(_Interrupt):
            search(ctx, chooser(), RecordLog(state))
    finally:
        CellEvaluator._evaluate = real_evaluate
    saved = RecordLog(state)
    assert 0 < len(saved.records) <= 10

    resumed_log = RecordLog(state)
    resumed = search(make_ctx(tiny_macro, neuron, images), chooser(), resumed_log)
    assert resumed_log.resumed == len(saved.records)
    assert resumed.genotype == reference.genotype
    assert resumed.score == reference.score


class _NanScore(SAHD):
    def reduce(self, kernel):
        return float("nan") if kernel[0, 1] > kernel[0, 2] else super().reduce(kernel)


class _NanPlugin:
    @hookimpl
    def spikenas_register_scores(self, registry):
        registry.add("sometimes_nan", _NanScore)


def test_non_finite_scores_rank_last_without_crashing(tiny_macro, neuron, images):
    with temporary_plugin(_NanPlugin(), name="nan-score"):
        ctx = make_ctx(tiny_macro, neuron, images, score="sometimes_nan")
        log = RecordLog()
        result = search(ctx, RandomSearch(candidates=10), log)
    finite = [r for r in log.records if math.isfinite(r.score) and r.stage == "random"]
    if finite:
        assert result.score == max(r.score for r in finite)
    else:
        assert result.score == -math.inf
