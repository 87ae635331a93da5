"""The analysis tables and the enhanced-space rule (docs/analysis.md) on hand-made rows."""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import stat
import statistics

import pytest
import torch

from spikenas.analysis.networks import NetworkTable, TrainedNetwork
from spikenas.analysis.plan import CellSearch
from spikenas.analysis.settings import ProxyRecipe
from spikenas.analysis.inference import bootstrap_p, holm, mean_agreement, mean_ceiling, tau_b
from spikenas.analysis.ranking import REFERENCE, correlation_table
from spikenas.analysis.sizes import SIZES
from spikenas.analysis.tables import baseline_table, cells_table, enhanced_space, impact_table
from spikenas.base.errors import SpikenasError
from spikenas.base.files import atomic_write
from spikenas.score.hamming import Hamming
from spikenas.space.genotype import CellGenotype, Genotype

OPS = ["zero", "skip", "conv1x1", "conv3x3", "avgpool"]
CONNECTING = {"skip", "conv1x1", "conv3x3", "avgpool"}


def row(role: str, val: float, test: float | None = None, key: str | None = None, seed: int = 0,
        sahd: float = 0.0, hamming: float = 0.0, size: float = 1.0, nbytes: int = 1000) -> TrainedNetwork:
    roles = tuple(role.split(";"))
    key = key or f"{role}-{val}-{test}-{sahd}"
    sizes = {name: size * (i + 1) for i, name in enumerate(SIZES)}  # every baseline ranks like ``size``
    return TrainedNetwork(roles, key, key[:12], "0>1:skip", 2, "channels=8", nbytes, {"sahd": sahd, "hamming": hamming},
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


def test_every_size_measure_gets_the_same_statistics_and_synops_is_an_activity_proxy():
    rows = [row("random", acc, sahd=s, size=z, key=f"n{i}") for i, (acc, s, z) in enumerate(
        [(0.5, 1.0, 4.0), (0.6, 2.0, 1.0), (0.7, 3.0, 3.0), (0.8, 4.0, 2.0), (0.9, 5.0, 5.0)])]
    table = correlation_table(rows, ["sahd"])
    sizes = [r for r in table if r.role in ("baseline", "activity") and r.accuracy == "test"]
    assert [(r.score, r.role) for r in sizes] == [(s, "activity" if s == "synops" else "baseline") for s in SIZES]
    assert all(r.kendall_tau == pytest.approx(0.2) and 0 < r.kendall_p <= 1 and not math.isnan(r.spearman_rho) for r in sizes)
    sahd = next(r for r in table if r.score == "sahd" and r.accuracy == "test")
    assert sahd.kendall_tau == pytest.approx(1.0) and sahd.versus == "macs" and sahd.margin == pytest.approx(0.8)
    synops = next(r for r in table if r.score == "synops" and r.accuracy == "test")
    assert synops.versus == "macs" and synops.verdict  # compared like a score, never the reference
    assert all(r.versus is None for r in table if r.role == "baseline")


def test_the_reference_baseline_is_fixed_in_advance_not_the_best_one():
    g = torch.Generator().manual_seed(1)
    acc, noise = torch.rand(2, 40, generator=g)
    rows = [row("random", float(a), sahd=float(a), key=f"n{i}") for i, a in enumerate(acc)]
    # params ranks the accuracy perfectly, MACs is noise: a best-of-five baseline would be params
    rows = [dataclasses.replace(r, sizes={**r.sizes, "params": r.test_acc, "macs": float(z)}) for r, z in zip(rows, noise)]
    table = correlation_table(rows, ["sahd"])
    sahd = next(r for r in table if r.score == "sahd" and r.accuracy == "test")
    assert REFERENCE == "macs" and sahd.versus == "macs" and sahd.verdict == "beats"
    params = next(r for r in table if r.score == "params" and r.accuracy == "test")
    assert params.kendall_tau == pytest.approx(1.0) and params.verdict == ""


def test_verdicts_are_holm_corrected_over_the_compared_predictors():
    g = torch.Generator().manual_seed(2)
    truth = torch.rand(40, generator=g)
    scores = {f"s{j}": truth + (0.15 + 0.1 * j) * torch.randn(40, generator=g) for j in range(4)}
    rows = [TrainedNetwork(("random",), f"n{i}", f"n{i}", "0>1:skip", 2, "c", 1000 + i,
                           {name: float(v[i]) for name, v in scores.items()},
                           {"params": 1.0 + i, "bytes": 1000.0 + i, "synops": float(torch.rand(1, generator=g)),
                            "macs": float(truth[i] + 0.6 * torch.randn(1, generator=g)), "neurons": 5.0},
                           float(truth[i]), float(truth[i]), 0, 10, 0.5, 1.0) for i in range(40)]
    table = [r for r in correlation_table(rows, list(scores), resamples=400) if r.accuracy == "test"]
    compared = [r for r in table if r.versus]
    assert sorted(r.role for r in compared) == ["activity"] + ["combined"] * 4 + ["score"] * 4
    assert [r.margin_p_holm for r in compared] == pytest.approx(holm([r.margin_p for r in compared]))
    assert all(r.margin_p_holm >= r.margin_p for r in compared)
    assert any(r.verdict == "beats" for r in compared)
    assert any(r.margin_p < 0.05 and r.verdict == "tie" for r in compared)  # beats alone, not among 9 comparisons
    for r in compared:
        assert r.verdict == ("tie" if r.margin_p_holm >= 0.05 else "beats" if r.margin > 0 else "loses")


def test_holm_multiplies_the_ith_smallest_p_by_m_minus_i_plus_one_and_keeps_order():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, math.nan, 0.01]) == pytest.approx([0.5, math.nan, 0.02], nan_ok=True)
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])
    assert bootstrap_p(torch.ones(99, dtype=torch.float64)) == pytest.approx(2 / 100)  # never 0
    assert bootstrap_p(torch.linspace(-1, 1, 101, dtype=torch.float64)) == pytest.approx(1.0)


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


def _seed_noise(networks: int, seeds: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise-free accuracies (standard normal) and ``seeds`` noisy measurements of each."""
    g = torch.Generator().manual_seed(seed)
    truth = torch.randn(networks, generator=g, dtype=torch.float64)
    return truth, truth + noise * torch.randn(seeds, networks, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("seeds, noise", [(2, 1.0), (2, 0.5), (3, 1.0), (4, 2.0)])
def test_the_ceiling_is_the_tau_of_the_seed_mean_with_the_noise_free_accuracy(seeds, noise):
    agreement, simulated, estimated = [], [], []
    for replicate in range(8):  # 8 analyses of 1,500 networks: their means are steady to about 0.01
        truth, measured = _seed_noise(1500, seeds, noise, seed=100 * seeds + replicate)
        pairs = torch.stack([tau_b(measured[a][None], measured[b][None])[0] for a, b in itertools.combinations(range(seeds), 2)])
        agreement.append(float(mean_agreement(pairs)))  # one seed against another, over every pair as the table does
        simulated.append(float(tau_b(measured.mean(0)[None], truth[None])[0]))  # what a perfect predictor reaches
        estimated.append(float(mean_ceiling(torch.tensor(agreement[-1], dtype=torch.float64), seeds)))
    known = 2 / math.pi * math.asin(1 / math.sqrt(1 + noise ** 2 / seeds))  # the same, for a bivariate normal
    assert statistics.fmean(simulated) == pytest.approx(known, abs=0.015)
    assert statistics.fmean(estimated) == pytest.approx(statistics.fmean(simulated), abs=0.015)
    assert max(abs(e - s) for e, s in zip(estimated, simulated)) < 0.05  # each analysis's estimate, too
    assert statistics.fmean(agreement) < known - 0.05  # the seed-to-seed tau is not that ceiling


def test_the_noise_ceiling_rows_say_which_quantity_they_are_about():
    truth, measured = _seed_noise(120, 2, 1.0, seed=7)
    rows = [row("random", float(measured[s, i]), key=f"n{i}", seed=s, sahd=float(truth[i])) for s in (0, 1) for i in range(120)]
    table = [r for r in correlation_table(rows, ["sahd"], resamples=200) if r.accuracy == "test"]
    agreement = next(r for r in table if r.role == "agreement")
    ceiling = next(r for r in table if r.role == "ceiling")
    sahd = next(r for r in table if r.score == "sahd")  # the noise-free accuracy itself: a perfect predictor
    assert (agreement.score, ceiling.score, ceiling.networks) == ("seed_vs_seed", "mean_of_2_seeds", 120)
    assert agreement.kendall_tau == pytest.approx(float(tau_b(measured[:1], measured[1:2])[0]))
    assert ceiling.tau_low < sahd.kendall_tau < ceiling.tau_high  # the old single-seed "ceiling" lies far below it
    assert agreement.tau_high < sahd.kendall_tau
    assert ceiling.kendall_tau == pytest.approx(float(mean_ceiling(torch.tensor(agreement.kendall_tau), 2)))


def test_seed_rows_need_two_seeds_and_follow_the_seeds_agreement():
    accs = [0.5, 0.6, 0.7, 0.8, 0.9]
    same = [row("random", a, key=f"n{i}", seed=s) for s in (0, 1) for i, a in enumerate(accs)]
    seeds = [r for r in correlation_table(same, ["sahd"]) if r.role in ("agreement", "ceiling")]
    assert [(r.role, r.accuracy, r.networks) for r in seeds] == [
        ("agreement", "val", 5), ("ceiling", "val", 5), ("agreement", "test", 5), ("ceiling", "test", 5)]
    assert all(r.kendall_tau == pytest.approx(1.0) for r in seeds)
    flipped = [row("random", a if s == 0 else 1.4 - a, key=f"n{i}", seed=s) for s in (0, 1) for i, a in enumerate(accs)]
    table = correlation_table(flipped, ["sahd"])
    assert [r.kendall_tau for r in table if r.role == "agreement"] == pytest.approx([-1.0, -1.0])
    assert [r.kendall_tau for r in table if r.role == "ceiling"] == pytest.approx([0.0, 0.0])  # seeds that disagree
    one_seed = [row("random", a, key=f"n{i}") for i, a in enumerate(accs)]
    assert not [r for r in correlation_table(one_seed, ["sahd"]) if r.role in ("agreement", "ceiling")]


def test_the_stratum_ranks_only_networks_filling_the_budget():
    # size ranks the whole population; within the stratum (>= 900 bytes) sahd ranks and size does not
    small = [row("random", 0.5 + 0.01 * i, sahd=0.0, size=float(i), nbytes=300 + 10 * i, key=f"s{i}") for i in range(6)]
    full = [row("random" if i < 2 else "stratum", 0.9 - 0.01 * i, sahd=10.0 - i, size=float(10 + i), nbytes=900 + i, key=f"f{i}")
            for i in range(6)]
    found = row("found", 0.875, nbytes=950, key="found")
    rows = small + full + [found]
    table = correlation_table(rows, ["sahd"], stratum_least=900)
    stratum = {r.score: r for r in table if r.population == "stratum" and r.accuracy == "test"}
    assert stratum["sahd"].networks == 6 and stratum["sahd"].kendall_tau == pytest.approx(1.0)
    assert stratum["params"].kendall_tau == pytest.approx(-1.0)
    everyone = {r.score: r for r in table if r.population == "random" and r.accuracy == "test"}
    assert everyone["sahd"].networks == 8  # the random networks only: stratum draws are not uniform
    assert not [r for r in correlation_table(rows, ["sahd"]) if r.population == "stratum"]  # no budget, no stratum
    test = [r for r in baseline_table(rows, budget=1000, stratum_least=900) if r.accuracy == "test"][0]
    assert test.found_fill == pytest.approx(0.95) and test.matched.n == 6
    assert test.matched_percentile == pytest.approx(50.0)  # 0.875 beats 0.87, 0.86 and 0.85 of 0.90..0.85
    assert test.percentile == pytest.approx(100 * 6 / 8)
    assert math.isnan(baseline_table(rows)[1].matched_percentile)
