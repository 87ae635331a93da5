"""``spikenas front``: one whole-budget search per budget, front.csv and front.png, resume, full training."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

import spikenas.search.front as front
from spikenas.app.cli import main

CONFIG = str(Path(__file__).parent / "configs" / "front_tiny.yaml")


def run_front(tmp_path: Path, *extra: str) -> Path:
    main(["front", "--config", CONFIG, "--trainer.default_root_dir", str(tmp_path),
          "--trainer.logger.init_args.save_dir", str(tmp_path), *extra])
    fronts = [p.parent for p in (tmp_path / "lightning_logs").glob("version_*/front.csv")]
    assert len(fronts) == 1, "front wrote no front.csv"
    return fronts[0]


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "front.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # real trainings: .ci/run's slow step
def test_front_searches_each_budget_and_writes_the_table_and_the_figure(tmp_path, capsys):
    run = run_front(tmp_path)
    table = rows(run)
    assert [r["budget"] for r in table] == ["3KB", "6KB"]  # smallest first
    for row in table:
        assert 0 < int(row["bytes"]) <= int(row["budget_bytes"])
        assert 0 <= float(row["short_val_acc"]) <= 1 and row["test_acc"] == ""
        final = yaml.safe_load(Path(row["final_yaml"]).read_text())["model"]
        assert (final["quantization"]["weight_bits"] or 32) == int(row["weight_bits"])
        assert len(final["genotype"]["cells"]) == int(row["cells"]) and final["macro"]["channels"] == int(row["channels"])
        assert Path(row["final_yaml"]).parent != run  # each budget's search has its own run directory
    assert (run / "front.png").stat().st_size > 0
    assert "spikenas front: budget=6KB" in capsys.readouterr().out


@pytest.mark.slow  # seconds of real trainings
def test_a_stopped_front_resumes_without_searching_finished_budgets_again(tmp_path, monkeypatch):
    searched: list[str] = []
    real = front.run_search

    def stopping(trainer, model, datamodule, config, settings):
        searched.append(settings.budget)
        if len(searched) == 2:
            raise KeyboardInterrupt
        return real(trainer, model, datamodule, config, settings)

    monkeypatch.setattr(front, "run_search", stopping)
    with pytest.raises(SystemExit):
        run_front(tmp_path)
    run = run_front(tmp_path)
    assert searched == ["3KB", "6KB", "6KB"]  # 3KB was done; 6KB was cut off and searched again
    assert [r["budget"] for r in rows(run)] == ["3KB", "6KB"]


@pytest.mark.slow  # seconds of real trainings
def test_full_training_tests_every_point(tmp_path):
    table = rows(run_front(tmp_path, "--budgets", "[6KB]", "--full_training", "true"))
    assert len(table) == 1 and 0 <= float(table[0]["test_acc"]) <= 1


@pytest.mark.parametrize("budgets, message", [("[]", "front needs budgets"), ("[lots]", "budgets")])
def test_bad_budgets_are_one_line(tmp_path, budgets, message):
    with pytest.raises(SystemExit) as error:
        main(["front", "--config", CONFIG, "--budgets", budgets, "--trainer.default_root_dir", str(tmp_path)])
    assert message in str(error.value.code) and "\n" not in str(error.value.code)


def test_the_front_config_searches_each_budget_as_the_whole_budget_search_does():
    """configs/front.yaml's ``search:`` is configs/search_budget.yaml's search (the one the bench
    measured, arm D) at each budget: a setting changed in one file and not the other would draw a
    front of another search than the one its figures are about."""
    configs = Path(__file__).parent.parent / "configs"
    nested = yaml.safe_load((configs / "front.yaml").read_text())["search"]
    budget = yaml.safe_load((configs / "search_budget.yaml").read_text())
    random_only = {"candidates"}  # the random strategy's; the front's search runs spikenas
    outside = {"budget", "model", "trainer", "data", "seed_everything"}  # the search's settings are the rest
    differing = {key for key in (nested.keys() | budget.keys()) - outside
                 if key not in random_only and nested.get(key) != budget.get(key)}
    assert not differing, {key: (nested.get(key), budget.get(key)) for key in differing}
