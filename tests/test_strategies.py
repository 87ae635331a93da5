"""Search strategies are plugins: the built-in three, a third-party one through the CLI, evolution."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml

from spikenas.app.cli import main
from spikenas.base.errors import SpikenasError
from spikenas.plugin import hookimpl
from spikenas.space.config import SearchSpaceConfig
from spikenas.search.cell_search import build_context, make_strategy, search
from spikenas.search.evolution import EvolutionSearch
from spikenas.search.random_search import RandomSearch
from spikenas.search.records import RecordLog
from spikenas.plugin.testing import temporary_plugin

CONFIG = str(Path(__file__).parent / "configs" / "search_tiny.yaml")


def ctx_for(tiny_macro, neuron, seed=0, budget=None):
    images = torch.randn(12, *tiny_macro.input_shape, generator=torch.Generator().manual_seed(3))
    return build_context(tiny_macro, neuron, SearchSpaceConfig(cells=2), [images], budget=budget, seed=seed)


def test_builtin_strategies_are_registered_and_take_their_shared_settings():
    evolution = make_strategy("evolution", {"population": 7}, candidates=30, sweeps=9, rerank=1)
    assert isinstance(evolution, EvolutionSearch) and (evolution.candidates, evolution.population) == (30, 7)
    spikenas = make_strategy("spikenas", candidates=30, sweeps=2, last_sweeps=3, rerank=4)
    assert (spikenas.sweeps, spikenas.last_sweeps, spikenas.rerank) == (2, 3, 4)
    assert make_strategy("random", candidates=11).candidates == 11
    with pytest.raises(SpikenasError, match="unknown strategy 'anneal'; known: evolution, random, spikenas"):
        make_strategy("anneal")
    with pytest.raises(SpikenasError, match="strategy 'evolution' .* rejected options"):
        make_strategy("evolution", {"generations": 3})


def test_evolution_is_deterministic_per_seed_and_scores_its_candidates(tiny_macro, neuron):
    def run(seed):
        log = RecordLog()
        result = search(ctx_for(tiny_macro, neuron, seed), EvolutionSearch(candidates=14, population=5, sample_size=3), log)
        return result, log

    first, log = run(0)
    again, _ = run(0)
    other, _ = run(1)
    assert first.genotype == again.genotype and first.score == again.score
    assert [r.genotype for r in log.records] != [r.genotype for r in run(1)[1].records]
    scored = [r for r in log.records if r.stage == "evolution"]
    assert len(scored) == first.candidates == 14
    assert first.score == max(r.score for r in scored) and other.candidates == 14
    def edges(text: str) -> set[str]:
        return {f"{i}/{edge}" for i, cell in enumerate(text.split(" | ")) for edge in cell.split()}

    # every child differs from an earlier member in exactly one edge (one removed, one added)
    for k, child in enumerate(scored[5:], start=5):
        assert any(len(edges(child.genotype) ^ edges(earlier.genotype)) == 2 for earlier in scored[:k])


class Greedy(RandomSearch):
    """A third-party strategy: random, but named and optioned by its plugin."""

    name = "greedy"

    def __init__(self, tries: int = 4) -> None:
        super().__init__(candidates=tries)


class GreedyPlugin:
    @hookimpl
    def spikenas_register_strategies(self, registry):
        registry.add("greedy", Greedy)


def test_a_plugin_strategy_runs_through_the_cli_and_resumes(tmp_path, capsys):
    args = ["search", "--config", CONFIG, "--strategy", "greedy", "--strategy_options", "{tries: 5}",
            "--trainer.default_root_dir", str(tmp_path), "--trainer.logger.init_args.save_dir", str(tmp_path)]
    with temporary_plugin(GreedyPlugin(), name="greedy-plugin"):
        main(["plugins"])
        assert "strategy greedy greedy-plugin" in capsys.readouterr().out.splitlines()
        main(args)
        run = sorted((tmp_path / "lightning_logs").glob("version_*"))[-1]
        rows = list(csv.DictReader((run / "search.csv").open()))
        assert [r["stage"] for r in rows].count("random") == 5
        assert "strategy_options" not in yaml.safe_load((run / "final.yaml").read_text())
        # an interrupted run resumes: mark the state unfinished and rerun the same command
        state = next((tmp_path / "lightning_logs" / ".search_state").glob("*.json"))
        saved = RecordLog(state)
        saved.meta["complete"] = False
        saved.save()  # as an interrupted search leaves it (a state edited by hand is set aside)
        before = (run / "genotype.yaml").read_text()
        main(args)
        assert f"({len(saved.records)} candidates already scored)" in capsys.readouterr().out
        assert sorted((tmp_path / "lightning_logs").glob("version_*"))[-1] == run  # the same run directory
        assert (run / "genotype.yaml").read_text() == before


def test_evolution_through_the_cli_meets_the_budget(tmp_path):
    main(["search", "--config", CONFIG, "--strategy", "evolution", "--candidates", "12",
          "--strategy_options", "{population: 4, sample_size: 2}", "--budget", "20KB",
          "--trainer.default_root_dir", str(tmp_path), "--trainer.logger.init_args.save_dir", str(tmp_path)])
    run = sorted((tmp_path / "lightning_logs").glob("version_*"))[-1]
    rows = list(csv.DictReader((run / "search.csv").open()))
    assert [r["stage"] for r in rows].count("evolution") == 12
    assert all(int(r["bytes"]) <= 20_000 for r in rows)


def test_snasnet_sampler_shares_one_cell_drawn_by_snasnets_rules(tiny_macro, neuron):
    images = torch.randn(12, *tiny_macro.input_shape, generator=torch.Generator().manual_seed(3))
    ctx = build_context(tiny_macro, neuron, SearchSpaceConfig(cells=2, backward=True), [images], seed=0)
    log = RecordLog()
    search(ctx, make_strategy("random", {"sampler": "snasnet"}, candidates=40), log)
    cells = [r.genotype.split(" | ") for r in log.records if r.stage == "random"]
    assert len(cells) == 40 and all(a == b for a, b in cells)  # one cell, every position
    import random

    rng = random.Random(0)
    drawn = [ctx.cells.sample_snasnet(rng) for _ in range(3000)]
    assert all(ctx.cells.is_valid(c) for c in drawn)
    backward = sum(e.backward for c in drawn for e in c.edges)
    into_input = sum(e.backward and e.dst == 0 for c in drawn for e in c.edges)
    assert backward > 0 and into_input > 0
    # a pair other than the direct edge is backward with probability 1/2 * 4/5 (a connecting op)
    pair = [next(e for e in c.edges if e.pair == (1, 2)) for c in drawn]
    assert abs(sum(e.backward for e in pair) / len(pair) - 0.4) < 0.04
    with pytest.raises(SpikenasError, match="unknown random sampler 'nasbench'"):
        make_strategy("random", {"sampler": "nasbench"})
