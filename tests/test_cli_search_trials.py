"""``spikenas search --choose trials`` through the real CLI: precision, cell count, time steps and
width chosen together, exact bytes at each precision, final.yaml trains the chosen network at its
precision, and a stopped search resumes without redoing what it finished."""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

import pytest
import yaml

import spikenas.search.joint as joint
import spikenas.train.short_training as short_training
from spikenas import Genotype, hookimpl
from spikenas.cost import MemoryReport
from spikenas.plugin.testing import temporary_plugin
from spikenas.app.cli import main
from spikenas.network.profile import Profiler
from spikenas.neuron import NeuronConfig
from spikenas.plugin import get_registries
from spikenas.space import MacroConfig

from test_cli_search import run_search as run_rule_search

CONFIG = str(Path(__file__).parent / "configs" / "search_trials_tiny.yaml")
run_search = partial(run_rule_search, config=CONFIG)  # the same CLI run, on the tiny whole-budget config


def table(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # real trainings: .ci/run's slow step
def test_one_search_chooses_precision_cells_time_steps_and_width_and_final_yaml_trains_it(tmp_path, capsys):
    run = run_search(tmp_path)
    found = table(run / "candidates.csv")
    assert {r["weight_bits"] for r in found} == {"4", "32"}
    assert {r["cells"] for r in found} == {"1", "2"}
    assert {r["timesteps"] for r in found} == {"2", "3"}
    assert len({r["channels"] for r in found}) > 1  # the width fitted per precision (4-bit affords 8, 32-bit 4 too)
    registries = get_registries()
    for row in found:  # every candidate's bytes are exact under the cost model at its precision
        genotype = Genotype.from_yaml(yaml.safe_dump({"cells": [
            {"nodes": 4, "edges": [[op, int(s), int(d)] for s, d, op in
                                   (e.replace(">", ":").split(":") for e in cell.split())]}
            for cell in row["genotype"].split(" | ")]}))
        macro = MacroConfig(input_shape=(1, 8, 8), num_classes=3, timesteps=int(row["timesteps"]),
                            channels=int(row["channels"]), head_hidden=0, head_pool=2, votes=2, dropout=0.0)
        profile = Profiler(macro, NeuronConfig(), registries.operations).profile(genotype)
        cost = registries.cost_models.create("memory", weight_bits=int(row["weight_bits"]))
        assert cost(profile).total_bytes == int(row["bytes"]) <= 6000
    trials = table(run / "trials.csv")
    assert len(trials) == sum(int(r["kept"]) for r in found) == 8  # one per combination
    chosen = [r for r in trials if r["chosen"] == "1"]
    assert len(chosen) == 1 and chosen[0]["val_acc"] == max(r["val_acc"] for r in trials if r["state"] == "COMPLETE")
    final = yaml.safe_load((run / "final.yaml").read_text())["model"]
    bits = int(chosen[0]["weight_bits"])
    assert final["cost_options"]["weight_bits"] == bits
    assert final["quantization"]["weight_bits"] == (bits if bits < 32 else None)
    assert final["macro"]["timesteps"] == int(chosen[0]["timesteps"])
    assert final["macro"]["channels"] == int(chosen[0]["channels"])
    assert len(final["genotype"]["cells"]) == int(chosen[0]["cells"])
    out = capsys.readouterr().out
    assert "kept (most parameters of its group)" in out and "candidates go to short trainings" in out
    main(["fit", "--config", str(run / "final.yaml"), "--trainer.fast_dev_run", "1",
          "--trainer.default_root_dir", str(tmp_path / "fit")])


@pytest.mark.slow  # real trainings: .ci/run's slow step
def test_one_precision_listed_is_trained_at_that_precision(tmp_path):
    run = run_search(tmp_path, "--space.weight_bits", "[8]", "--space.cell_counts", "[1]", "--space.timesteps", "[3]")
    final = yaml.safe_load((run / "final.yaml").read_text())["model"]
    assert final["quantization"]["weight_bits"] == 8 and final["cost_options"]["weight_bits"] == 8
    assert len(table(run / "trials.csv")) == 1


@pytest.mark.slow  # seconds of real trainings
def test_a_stopped_search_resumes_without_searching_or_training_again_what_it_finished(tmp_path, monkeypatch, capsys):
    trained: list[int] = []
    real_train = short_training.train_in_chunks

    def stopping(*args, **kwargs):
        trained.append(1)
        if len(trained) == 3:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr("spikenas.search.by_trials.train_in_chunks", stopping)
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path)
    assert error.value.code == 130
    searched: list[tuple] = []
    real_group = joint.search_group
    monkeypatch.setattr(joint, "search_group", lambda group, *a: searched.append(group) or real_group(group, *a))
    before = len(trained)
    run = run_search(tmp_path)
    assert "resuming" in capsys.readouterr().out
    assert searched == []  # stage one came from the state
    assert len(trained) - before == 8 - 2  # the two finished trials were not trained again
    assert len(table(run / "trials.csv")) == 8 and run.name == "version_0"


@pytest.mark.slow  # seconds of real trainings
def test_the_random_filter_draws_its_trials_from_all_of_stage_ones_networks(tmp_path):
    run = run_search(tmp_path, "--trials.filter", "random", "--trials.keep", "3", "--space.timesteps", "[3]")
    found = table(run / "candidates.csv")
    trials = table(run / "trials.csv")
    assert len(trials) == 3 and {r["key"] for r in trials} <= {r["key"] for r in found}
    assert len(found) > 3  # drawn from more than it kept
    sized = table(run_search(tmp_path / "size", "--trials.keep", "3", "--space.timesteps", "[3]") / "trials.csv")
    assert {r["key"] for r in trials} != {r["key"] for r in sized}  # not the size filter's pick


@pytest.mark.parametrize("extra, message", [
    (["--choose", "rule"], "space.cell_counts lists several options, which only short trainings choose"),
    (["--choose", "best"], "choose must be one of rule, trials"),
    (["--trials.epochs", "-1"], "trials.epochs must be a number > 0"),
    (["--trials.filter", "best"], "trials.filter must be one of size, random"),
    (["--data.init_args.val_split", "0"], "choose: trials judges candidates on a validation split"),
])
def test_bad_whole_budget_settings_are_one_line_errors(tmp_path, extra, message):
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path, *extra)
    text = str(error.value.code)
    assert text.startswith("spikenas: error: ") and message in text and "\n" not in text


class CountsNoBits:
    """A third party's cost model that says nothing of weight precision."""

    @staticmethod
    @hookimpl
    def spikenas_register_cost_models(registry) -> None:
        registry.add("params_only", lambda: (lambda profile: MemoryReport.at_precision("params_only", profile, 32, 32, False)))


def test_listing_precisions_for_a_cost_model_that_counts_none_is_one_line(tmp_path):
    with temporary_plugin(CountsNoBits, name="params_only"):
        with pytest.raises(SystemExit) as error:
            run_search(tmp_path, "--cost_model", "params_only")
    text = str(error.value.code)
    assert "space.weight_bits needs a cost model that counts weight bits" in text and "'params_only'" in text
    assert "\n" not in text and not list((tmp_path / "lightning_logs").glob("version_*"))
