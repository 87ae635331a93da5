"""``spikenas search`` with scores that are not kernel sums: the size baseline (``--score
size``) and whole-network scores (``synflow``, ``naswot_head``)."""

from __future__ import annotations

import csv
import math

import pytest

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
