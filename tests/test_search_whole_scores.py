"""``spikenas search`` with scores that are not kernel sums: the size baseline (``--score
size``) and whole-network scores (``synflow``, ``naswot_head``)."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from spikenas.space.config import SearchSpaceConfig
from spikenas.search.cell_search import build_context, search
from spikenas.search.consecutive import SpikeNASSearch
from spikenas.evaluate.whole_network import SynOpsCellEvaluator, WholeCellEvaluator
from test_cli_search import run_search


@pytest.mark.parametrize("measure", ["bytes", "params", "synops"])
def test_the_size_score_keeps_the_largest_network_that_fits(tmp_path, measure):
    run = run_search(tmp_path, "--score", "size", "--budget", "40KB", "--score_options", f"{{measure: {measure}}}")
    rows = list(csv.DictReader((run / "search.csv").open()))
    final = next(r for r in rows if r["stage"] == "final")
    assert int(final["bytes"]) <= 40_000
    assert float(final["score"]) == max(float(r["score"]) for r in rows if r["stage"] != "final")
    if measure == "bytes":
        assert float(final["score"]) == int(final["bytes"]) == max(int(r["bytes"]) for r in rows)


def test_the_size_score_with_a_synops_limit_is_one_line(tmp_path):
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path, "--score", "size", "--budget", "{memory: 40KB, synops: 2e6}")
    assert "ranks whole networks without counting their spikes, so it measures no SynOps" in str(error.value.code)


@pytest.mark.parametrize("score", ["synflow", "naswot_head"])
def test_a_whole_network_score_searches_cell_by_cell_and_records_the_whole_networks_score(tmp_path, score):
    """A score that is not a kernel sum scores every candidate as the whole network it
    completes: the final row's score is the found network's own, and the budget holds."""
    run = run_search(tmp_path, "--score", score, "--budget", "40KB")
    rows = list(csv.DictReader((run / "search.csv").open()))
    final = next(r for r in rows if r["stage"] == "final")
    assert int(final["bytes"]) <= 40_000 and math.isfinite(float(final["score"]))
    last_cell = [float(r["score"]) for r in rows if r["stage"] == "cell1"]
    assert last_cell and float(final["score"]) == max(last_cell)


@pytest.mark.parametrize("backward", [False, True])
def test_synops_counted_cell_by_cell_equal_the_built_networks(tiny_macro, neuron, snasnet_cell, backward_cell, backward):
    """``size`` with ``measure: synops`` counts each candidate's SynOps incrementally, reusing the
    cells before it: the values are those of building and running each whole network, at
    every cell position, and from the evaluator's memoised edges the second time."""
    images = torch.randn(12, *tiny_macro.input_shape, generator=torch.Generator().manual_seed(3))
    ctx = build_context(tiny_macro, neuron, SearchSpaceConfig(cells=2, backward=backward), [images], budget=20_000,
                        score="size", score_options={"measure": "synops"})
    last = backward_cell if backward else snasnet_cell
    first, built = SynOpsCellEvaluator(ctx.engine), WholeCellEvaluator(ctx.engine)
    cheapest = ctx.memory.cheapest(ctx.cells, 2).cells[0]
    assert first.score_many([snasnet_cell, cheapest]) == pytest.approx(built.score_many([snasnet_cell, cheapest]), rel=1e-9)
    second = first.following(snasnet_cell)
    expected = built.following(snasnet_cell).score_many([last])[0]
    for _ in range(2):
        assert second.score_many([last])[0] == pytest.approx(expected, rel=1e-9)
    assert expected > 0 and second.is_last and second.prefix == (snasnet_cell,)


def test_the_synops_size_search_finds_what_whole_network_scoring_finds(tiny_macro, neuron, monkeypatch):
    images = torch.randn(12, *tiny_macro.input_shape, generator=torch.Generator().manual_seed(5))

    def found() -> tuple:
        ctx = build_context(tiny_macro, neuron, SearchSpaceConfig(cells=2), [images], budget=20_000,
                            score="size", score_options={"measure": "synops"})
        result = search(ctx, SpikeNASSearch(), show_progress=False)
        return result.genotype, result.score

    incremental, score = found()
    monkeypatch.setattr("spikenas.evaluate.cells.SynOpsCellEvaluator", lambda engine: WholeCellEvaluator(engine))
    built, built_score = found()
    assert incremental == built and score == pytest.approx(built_score, rel=1e-9)
