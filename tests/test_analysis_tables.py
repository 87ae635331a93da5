"""The analysis tables and the enhanced-space rule (docs/analysis.md) on hand-made rows."""

from __future__ import annotations

import math
import os
import stat

import pytest
import torch

from spikenas.analysis.networks import NetworkTable, TrainedNetwork
from spikenas.analysis.plan import CellSearch
from spikenas.analysis.settings import ProxyRecipe
from spikenas.analysis.ranking import correlation_table, tau_b
from spikenas.analysis.sizes import SIZES
from spikenas.analysis.tables import baseline_table, cells_table, enhanced_space, impact_table
from spikenas.base.errors import SpikenasError
from spikenas.base.files import atomic_write
from spikenas.score.hamming import Hamming
from spikenas.space.genotype import CellGenotype, Genotype

OPS = ["zero", "skip", "conv1x1", "conv3x3", "avgpool"]
CONNECTING = {"skip", "conv1x1", "conv3x3", "avgpool"}


def row(role: str, val: float, test: float | None = None, key: str | None = None, seed: int = 0,
        sahd: float = 0.0, hamming: float = 0.0, size: float = 1.0) -> TrainedNetwork:
    roles = tuple(role.split(";"))
    key = key or f"{role}-{val}-{test}-{sahd}"
    sizes = {name: size * (i + 1) for i, name in enumerate(SIZES)}  # every baseline ranks like ``size``
    return TrainedNetwork(roles, key, key[:12], "0>1:skip", 2, "channels=8", 1000, {"sahd": sahd, "hamming": hamming},
                          sizes, val, val if test is None else test, seed, 10, 0.5, 1.0)


def test_impact_keeps_operations_whose_removal_costs_accuracy():
    rows = [row("random", 0.80, key="r1"), row("random", 0.80, key="r2"),
            row("without:conv3x3", 0.70), row("without:avgpool", 0.85), row("without:skip", 0.80),
            row("without:conv1x1", 0.78), row("without:zero", 0.90), row("only:conv3x3", 0.82)]
    table = impact_table(rows, OPS, CONNECTING, keep_threshold=0.0)
    kept = {r.operation: r.kept for r in table}
    # conv3x3 and conv1x1 help; avgpool hurts; skip changes nothing; zero is always kept
    assert kept == {"zero": True, "skip": False, "conv1x1": True, "conv3x3": True, "avgpool": False}
    conv = [r for r in table if r.operation == "conv3x3"][0]
    assert conv.impact_val == pytest.approx(0.10) and conv.only_val.mean == pytest.approx(0.82)
    assert conv.full_val.n == 2 and conv.without_val.std == 0.0
    assert enhanced_space(table, [], OPS, 2) == {"operations": ["zero", "conv1x1", "conv3x3"], "cells": 2}
    stricter = impact_table(rows, OPS, CONNECTING, keep_threshold=0.05)
    assert [r.operation for r in stricter if r.kept] == ["zero", "conv3x3"]


def test_impact_keeps_the_best_connecting_operation_when_none_helps():
    rows = [row("random", 0.5, key="r")] + [row(f"without:{op}", v) for op, v in
                                            (("skip", 0.6), ("conv1x1", 0.55), ("conv3x3", 0.52), ("avgpool", 0.7))]
    table = impact_table(rows, OPS, CONNECTING, keep_threshold=0.0)
    assert [r.operation for r in table if r.kept] == ["zero", "conv3x3"]


def test_cells_rule_takes_the_fewest_cells_within_tolerance_of_the_best():
    genotype = Genotype((CellGenotype.from_ops(4, [("skip", 0, 3)]),))
    searches = {n: CellSearch(n, genotype, -1.0, 1000 * n, 0.5, 10) for n in (1, 2, 3)}
    rows = [row("cells:1", 0.800), row("cells:2", 0.853, seed=0), row("cells:2", 0.853, seed=1, key="cells:2-0.853-None-0.0"),
            row("cells:3", 0.855)]
    table = cells_table(rows, searches, tolerance=0.005)
    assert [(r.cells, r.chosen) for r in table] == [(1, False), (2, True), (3, False)]
    assert table[1].val.n == 2 and table[2].bytes == 3000
    assert cells_table(rows, searches, tolerance=0.0)[2].chosen
    assert enhanced_space([], table, OPS, 3) == {"operations": OPS, "cells": 2}


def test_correlation_is_kendall_and_spearman_over_random_networks():
    rows = [row("random", acc, sahd=s, hamming=-s, key=f"n{i}") for i, (acc, s) in enumerate(
        [(0.5, 1.0), (0.6, 2.0), (0.7, 3.0), (0.8, 4.0)])]
    rows.append(row("random", 0.4, sahd=-math.inf, hamming=-5.0, key="dead"))  # non-finite: ranked last
    rows.append(row("found", 0.99, sahd=100.0, key="found"))  # not a random network
    table = {(r.score, r.accuracy): r for r in correlation_table(rows, ["sahd", "hamming"]) if r.role == "score"}
    assert table["sahd", "test"].networks == 5
    assert table["sahd", "test"].kendall_tau == pytest.approx(1.0)
    assert table["sahd", "val"].spearman_rho == pytest.approx(1.0)
    assert table["hamming", "test"].kendall_tau == pytest.approx(-0.2)  # (4 concordant - 6 discordant) / 10 pairs
    assert 0.0 <= table["sahd", "test"].kendall_p < 0.05


def test_correlation_of_constant_accuracy_is_undefined():
    rows = [row("random", 0.5, sahd=float(i), key=f"n{i}") for i in range(4)]
    assert all(math.isnan(r.kendall_tau) for r in correlation_table(rows, ["sahd"]))


def test_baseline_percentile_counts_ties_half_and_averages_seeds():
    rows = [row("found", 0.90, key="f", seed=0), row("found", 0.90, key="f", seed=1)]
    rows += [row("random", acc, key=f"r{i}") for i, acc in enumerate([0.80, 0.85, 0.90, 0.95])]
    test = [r for r in baseline_table(rows) if r.accuracy == "test"][0]
    assert test.percentile == pytest.approx(62.5)
    assert test.gap_mean == pytest.approx(0.025) and test.gap_best == pytest.approx(-0.05)
    assert test.random.n == 4


def test_network_table_round_trips_and_rejects_foreign_columns(tmp_path):
    table = NetworkTable(tmp_path / "networks.csv", ["sahd", "hamming"])
    table.add(row("random;found", 0.75, 0.7, sahd=-math.inf, hamming=2.5))
    table.save()
    again = NetworkTable(tmp_path / "networks.csv", ["sahd", "hamming"])
    assert again.load() == 1
    loaded = again.all()[0]
    assert loaded.roles == ("random", "found") and loaded.scores == {"sahd": -math.inf, "hamming": 2.5}
    assert (loaded.val_acc, loaded.test_acc) == (0.75, 0.7)
    assert loaded.sizes == {name: float(i + 1) for i, name in enumerate(SIZES)}
    # another set of registered scores keeps the trained rows: only the new score is missing
    other = NetworkTable(tmp_path / "networks.csv", ["sahd", "synflow"])
    assert other.load() == 1 and other.all()[0].scores == {"sahd": -math.inf}
    assert other.incomplete() == {loaded.key}
    other.measured(loaded.key, {"sahd": 1.0, "synflow": 2.0}, loaded.sizes)
    assert other.incomplete() == set() and other.all()[0].val_acc == 0.75
    (tmp_path / "foreign.csv").write_text("study,key,size\nrandom,k,3\n")
    with pytest.raises(SpikenasError, match="columns"):
        NetworkTable(tmp_path / "foreign.csv", ["sahd"]).load()


def test_network_table_keeps_every_number_exactly(tmp_path):
    table = NetworkTable(tmp_path / "networks.csv", ["sahd", "hamming"])
    exact = row("random", 1 / 3, 0.1 + 0.2, key="exact")  # not representable in 6 decimals
    table.add(exact)
    table.save()
    reread = NetworkTable(tmp_path / "networks.csv", ["sahd", "hamming"])
    reread.load()
    assert reread.rows[("exact", 0)] == exact  # a resumed analysis computes the same tables


def test_proxy_recipe_steps_and_errors():
    assert ProxyRecipe(epochs=0.5, train_subset=1000, batch_size=64).check().steps(5000, 64) == 8
    assert ProxyRecipe(epochs=2, train_subset=None).steps(100, 64) == 4
    with pytest.raises(SpikenasError, match="0 steps"):
        ProxyRecipe(epochs=0.001, train_subset=100).steps(5000, 64)
    with pytest.raises(SpikenasError, match="proxy.seeds"):
        ProxyRecipe(seeds=[]).check()


def test_hamming_kernel_is_neurons_minus_hamming_distance():
    spikes = torch.tensor([[[1, 0, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]], dtype=torch.float32)  # [T=1, B=3, N=4]
    kernel = Hamming().kernel(spikes)
    assert kernel.dtype == torch.float64
    assert kernel.tolist() == [[4, 3, 2], [3, 4, 1], [2, 1, 4]]
    assert Hamming().reduce(kernel) == pytest.approx(math.log(abs(torch.linalg.det(kernel).item())))


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "out.txt", "text")
        atomic_write(tmp_path / "out.png", b"\x89PNG")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644
    assert (tmp_path / "out.png").read_bytes() == b"\x89PNG" and (tmp_path / "out.txt").read_text() == "text"


def test_every_size_baseline_gets_the_same_statistics_marked_as_a_baseline():
    rows = [row("random", acc, sahd=s, size=z, key=f"n{i}") for i, (acc, s, z) in enumerate(
        [(0.5, 1.0, 4.0), (0.6, 2.0, 1.0), (0.7, 3.0, 3.0), (0.8, 4.0, 2.0), (0.9, 5.0, 5.0)])]
    table = correlation_table(rows, ["sahd"])
    baselines = [r for r in table if r.role == "baseline" and r.accuracy == "test"]
    assert [r.score for r in baselines] == list(SIZES)
    assert all(r.kendall_tau == pytest.approx(0.2) and 0 < r.kendall_p <= 1 and not math.isnan(r.spearman_rho) for r in baselines)
    sahd = next(r for r in table if r.score == "sahd" and r.accuracy == "test")
    assert sahd.kendall_tau == pytest.approx(1.0) and sahd.versus == "params"  # the first of the equally good baselines


@pytest.mark.parametrize("seed", range(5))
def test_the_bootstrap_tau_is_kendalls_tau_b_with_ties(seed):
    from torchmetrics.functional.regression import kendall_rank_corrcoef

    g = torch.Generator().manual_seed(seed)
    x, y = torch.randint(0, 6, (2, 30), generator=g).double()  # many ties
    assert float(tau_b(x[None], y[None])[0]) == pytest.approx(float(kendall_rank_corrcoef(x, y, variant="b")), abs=1e-6)


def test_the_interval_holds_tau_and_the_verdict_follows_the_paired_difference():
    g = torch.Generator().manual_seed(0)
    acc = torch.rand(60, generator=g)
    noise = torch.rand(60, generator=g)
    # sahd ranks the accuracy exactly, the sizes are noise: sahd beats the best baseline
    rows = [row("random", float(a), sahd=float(a), size=float(z), key=f"n{i}") for i, (a, z) in enumerate(zip(acc, noise))]
    sahd = next(r for r in correlation_table(rows, ["sahd"]) if r.score == "sahd" and r.accuracy == "test")
    assert sahd.tau_low == sahd.tau_high == pytest.approx(1.0) and sahd.verdict == "beats"
    # now the sizes rank it and sahd is noise: it loses; a noisy score's interval holds its tau
    rows = [row("random", float(a), sahd=float(z), size=float(a), key=f"n{i}") for i, (a, z) in enumerate(zip(acc, noise))]
    sahd = next(r for r in correlation_table(rows, ["sahd"]) if r.score == "sahd" and r.accuracy == "test")
    assert sahd.verdict == "loses" and sahd.tau_low < sahd.kendall_tau < sahd.tau_high and sahd.margin_high < 0


def test_the_noise_ceiling_is_tau_between_two_seeds_of_the_same_networks():
    accs = [0.5, 0.6, 0.7, 0.8, 0.9]
    same = [row("random", a, key=f"n{i}", seed=s) for s in (0, 1) for i, a in enumerate(accs)]
    ceiling = [r for r in correlation_table(same, ["sahd"]) if r.role == "ceiling"]
    assert [(r.accuracy, r.networks) for r in ceiling] == [("val", 5), ("test", 5)] and ceiling[1].kendall_tau == pytest.approx(1.0)
    flipped = [row("random", a if s == 0 else 1.4 - a, key=f"n{i}", seed=s) for s in (0, 1) for i, a in enumerate(accs)]
    assert [r for r in correlation_table(flipped, ["sahd"]) if r.role == "ceiling"][1].kendall_tau == pytest.approx(-1.0)
    one_seed = [row("random", a, key=f"n{i}") for i, a in enumerate(accs)]
    assert not [r for r in correlation_table(one_seed, ["sahd"]) if r.role == "ceiling"]
