"""Several named limits at once: ``budget: {memory: ..., synops: ...}``.

SynOps are counted in the pass that scores a candidate; these tests check that count against a
separate measurement, that every strategy's result meets both limits, and the one-line errors.
"""

from __future__ import annotations

import csv

import pytest
import torch

from spikenas import Genotype
from spikenas.app.cli import main
from spikenas.base.errors import SpikenasError
from spikenas.score import scoring_mode
from spikenas.space.config import SearchSpaceConfig
from spikenas.search.cell_search import build_context, search
from spikenas.search.evolution import EvolutionSearch
from spikenas.evaluate.incremental import CellEvaluator
from spikenas.cost.limits import Limits, parse_limits
from spikenas.search.random_search import RandomSearch
from spikenas.search.consecutive import SpikeNASSearch
from spikenas.search.strategy import Found, SearchStrategy
from spikenas.cost.synops import measure_synops
from test_analyze import CONFIG as ANALYZE_CONFIG
from test_cli_search import CONFIG as SEARCH_CONFIG, run_search

BUDGET = 20_000  # bytes: every macro of the tiny space fits, so SynOps decide


@pytest.fixture
def images(tiny_macro):
    return torch.randn(12, *tiny_macro.input_shape, generator=torch.Generator().manual_seed(3))


def make_ctx(tiny_macro, neuron, images, synops=None, backward=False):
    budget = {"memory": BUDGET} if synops is None else {"memory": BUDGET, "synops": synops}
    return build_context(tiny_macro, neuron, SearchSpaceConfig(cells=2, backward=backward), [images], budget=budget)


def measured(ctx, genotype: Genotype, images) -> float:
    """SynOps of one inference, by a separate pass over the built network."""
    return sum(measure_synops(scoring_mode(ctx.engine.build(genotype)), [images]).values())


@pytest.mark.parametrize("budget, expected", [
    ("256KiB", Limits(262_144, None)),
    ({"memory": "256KiB", "synops": "2e6"}, Limits(262_144, 2e6)),
    ({"memory": 1000, "synops": "1.5M"}, Limits(1000, 1.5e6)),
    ({"synops": 2_000_000}, Limits(None, 2e6)),
    (None, Limits()),
])
def test_budget_reads_as_named_limits(budget, expected):
    assert parse_limits(budget, "memory") == expected


@pytest.mark.parametrize("budget, culprit", [
    ({"memory": "1KiB", "energy": 3}, "budget limit 'energy' is unknown"),
    ({"memory": "1KiB", "synops": "-5"}, "budget limit 'synops' must be a positive"),
    ({"memory": "1KiB", "synops": "lots"}, "budget limit 'synops' must be a positive"),
    ({"memory": "1KiB", "synops": float("nan")}, "budget limit 'synops' must be a positive"),
    ({}, "budget is an empty mapping"),
])
def test_bad_limits_are_one_line_errors(budget, culprit):
    with pytest.raises(SpikenasError, match=culprit):
        parse_limits(budget, "memory")


@pytest.mark.parametrize("budget, culprit", [
    ("inf", "budget 'inf' is not a size"),
    ("Infinity", "budget 'Infinity' is not a size"),
    ("1e999", "budget '1e999' is not a size"),
    ("-inf", "budget '-inf' is not a size"),
    ("infKiB", "budget 'infKiB' is not a size"),
    (float("inf"), "budget must be a positive, finite number of bytes, got inf"),
    ("-1KB", "budget '-1KB' is not a size"),
    (-5, "budget must be a positive, finite number of bytes, got -5"),
    ({"memory": "inf"}, "budget limit 'memory' 'inf' is not a size"),
    ({"memory": float("inf")}, "budget limit 'memory' must be a positive, finite number of bytes, got inf"),
    ({"memory": "-2KiB"}, "budget limit 'memory' '-2KiB' is not a size"),
    ({"memory": "1KiB", "synops": "inf"}, "budget limit 'synops' must be a positive, finite number .*'inf'"),
    ({"memory": "1KiB", "synops": float("inf")}, "budget limit 'synops' must be a positive, finite number .*inf"),
    ({"synops": "1e999"}, "budget limit 'synops' must be a positive, finite number .*'1e999'"),
])
def test_an_infinite_or_negative_limit_is_a_one_line_error_not_no_limit(budget, culprit):
    with pytest.raises(SpikenasError, match=culprit) as error:
        parse_limits(budget, "memory")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("command", ["search", "analyze"])
def test_budget_inf_on_the_command_line_is_refused_before_anything_runs(tmp_path, command):
    config = SEARCH_CONFIG if command == "search" else ANALYZE_CONFIG
    with pytest.raises(SystemExit) as error:
        main([command, "--config", config, "--trainer.default_root_dir", str(tmp_path),
              "--trainer.logger.init_args.save_dir", str(tmp_path), "--budget" if command == "search" else "--search.budget", "inf"])
    text = str(error.value.code)
    assert text.startswith("spikenas: error: budget 'inf' is not a size") and "\n" not in text
    assert not list(tmp_path.rglob("version_*"))


def test_a_plugin_cost_model_names_its_own_limit():
    assert parse_limits({"sram": "64KiB", "synops": 10}, "sram") == Limits(65_536, 10.0)
    with pytest.raises(SpikenasError, match="budget limit 'memory' is unknown: give 'sram'"):
        parse_limits({"memory": "64KiB"}, "sram")


@pytest.mark.parametrize("backward", [False, True])
def test_synops_counted_while_scoring_equal_a_separate_measurement(tiny_macro, neuron, images, genotype, snasnet_cell,
                                                                   backward_cell, backward):
    ctx = make_ctx(tiny_macro, neuron, images, synops=1e12, backward=backward)
    last = backward_cell if backward else snasnet_cell
    whole = Genotype((snasnet_cell, last))
    assessment = ctx.engine.assess(whole)
    assert assessment.synops == pytest.approx(measured(ctx, whole, images), rel=1e-9)
    assert assessment.synops > 0
    # the per-cell evaluator: cell 0 with the cheapest cell after it, and the last cell
    first = CellEvaluator(ctx.engine, ())
    completed = ctx.memory.cheapest(ctx.cells, 2, (snasnet_cell,))
    assert first.assess(snasnet_cell).synops == pytest.approx(measured(ctx, completed, images), rel=1e-9)
    last_cell = CellEvaluator(ctx.engine, (snasnet_cell,))
    for _ in range(2):  # the second time from the evaluator's memoised edges
        result = last_cell.assess(last)
        assert result.synops == pytest.approx(assessment.synops, rel=1e-9)
        assert result.score == pytest.approx(assessment.score, rel=1e-9)


def test_without_a_synops_limit_nothing_is_counted(tiny_macro, neuron, images, genotype):
    ctx = make_ctx(tiny_macro, neuron, images)
    assert ctx.engine.assess(genotype).synops is None
    assert CellEvaluator(ctx.engine, genotype.cells[:1]).assess(genotype.cells[1]).synops is None


STRATEGIES = {
    "spikenas": lambda: SpikeNASSearch(),
    "random": lambda: RandomSearch(candidates=40, chunk=8),
    "evolution": lambda: EvolutionSearch(candidates=30, population=6, sample_size=3),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_two_limit_search_meets_both_limits(tiny_macro, neuron, images, name):
    free = search(make_ctx(tiny_macro, neuron, images), STRATEGIES[name]())
    plain = make_ctx(tiny_macro, neuron, images)
    unlimited = measured(plain, free.genotype, images)
    floor = measured(plain, plain.memory.cheapest(plain.cells, 2), images)
    assert floor < unlimited, "the tiny space must offer networks with fewer SynOps than the unlimited result"
    limit = (floor + unlimited) / 2  # binding: the unlimited result is over it

    ctx = make_ctx(tiny_macro, neuron, images, synops=limit)
    result = search(ctx, STRATEGIES[name]())
    assert result.bytes <= BUDGET
    assert result.synops is not None and result.synops <= limit
    assert measured(ctx, result.genotype, images) == pytest.approx(result.synops, rel=1e-9)
    assert result.synops_limit == limit and f"synops_limit={limit:.0f}" in result.summary()


def test_unreachable_synops_limit_is_one_line_error_leaving_no_run(tmp_path):
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path, "--budget", "{memory: 40KB, synops: 10}")
    message = str(error.value.code)
    assert message.startswith("spikenas: error: synops limit 10 is below the smallest value the spikenas search")
    assert "SynOps per inference" in message and "\n" not in message
    assert not list((tmp_path / "lightning_logs").glob("version_*"))


def test_unknown_limit_is_one_line_error_before_anything_is_written(tmp_path):
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path, "--budget", "{memory: 40KB, latency: 3}")
    assert "budget limit 'latency' is unknown" in str(error.value.code)
    assert not (tmp_path / "lightning_logs").exists() or not list((tmp_path / "lightning_logs").glob("version_*"))


def test_two_limits_through_the_cli_reach_search_csv_and_final_yaml(tmp_path, capsys):
    run = run_search(tmp_path, "--budget", "{memory: 40KB, synops: 1e9}")
    rows = list(csv.DictReader((run / "search.csv").open()))
    final = [r for r in rows if r["stage"] == "final"][0]
    assert 0 < float(final["synops"]) <= 1e9 and int(final["bytes"]) <= 40_000
    whole = [r for r in rows if r["stage"].endswith("/whole") or r["stage"] == "cell1"]
    assert whole and all(r["synops"] for r in whole)
    summary = [line for line in capsys.readouterr().out.splitlines() if "strategy=spikenas" in line][-1]
    assert "budget=40000" in summary and "synops_limit=1000000000" in summary
    text = (run / "final.yaml").read_text()
    assert "synops_limit: 1000000000.0" in text and "budget: 40000" in text
    main(["fit", "--config", str(run / "final.yaml"), "--trainer.fast_dev_run", "1",
          "--trainer.default_root_dir", str(tmp_path / "fit")])


class _Largest(SearchStrategy):
    """A careless plugin strategy: the space's costliest network, whatever the limits."""

    name = "largest"

    def run(self, ctx, evaluator):
        return Found(max(ctx.memory.largest(ctx.cells, ctx.num_cells), key=ctx.bytes_of))


def test_a_strategy_returning_a_network_over_a_limit_is_refused_by_name(tiny_macro, neuron, images):
    plain = make_ctx(tiny_macro, neuron, images)
    largest = max(plain.memory.largest(plain.cells, 2), key=plain.bytes_of)
    over_bytes = build_context(tiny_macro, neuron, SearchSpaceConfig(cells=2), [images], budget=plain.bytes_of(largest) - 1)
    with pytest.raises(SpikenasError, match="strategy 'largest' returned a network of [0-9,]+ bytes, over the budget"):
        search(over_bytes, _Largest())
    over_synops = build_context(tiny_macro, neuron, SearchSpaceConfig(cells=2), [images],
                                budget={"synops": measured(plain, largest, images) / 2})
    with pytest.raises(SpikenasError, match="synops limit [0-9,]+ is below the smallest value the largest search reached"):
        search(over_synops, _Largest())
    on_chip = build_context(tiny_macro, neuron, SearchSpaceConfig(cells=2), [images], cost_model="speck")
    with pytest.raises(SpikenasError, match=r"^strategy 'largest' returned a network that does not run on the hardware of "
                                            r"cost model 'speck': 16 layers, more than the chip's 9 cores$"):
        search(on_chip, _Largest())


def test_a_strategy_returning_something_else_than_found_is_named(tiny_macro, neuron, images):
    class Bare(SearchStrategy):
        name = "bare"

        def run(self, ctx, evaluator):
            return ctx.memory.cheapest(ctx.cells, ctx.num_cells)  # a Genotype, not a Found

    with pytest.raises(SpikenasError, match="strategy 'bare' returned a Genotype, not a spikenas.search.strategy.Found"):
        search(make_ctx(tiny_macro, neuron, images), Bare())
