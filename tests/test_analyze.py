"""``spikenas analyze`` end to end on the synthetic task: every output, resume, errors, DDP."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spikenas.analysis.proxy import ProxyTrainer
from spikenas.analysis.sizes import SIZES
from spikenas.app.cli import main
from spikenas.plugin import hookimpl
from spikenas.plugin.testing import temporary_plugin

CONFIG = str(Path(__file__).parent / "configs" / "analyze_tiny.yaml")
SEARCH_CONFIG = str(Path(__file__).parent / "configs" / "search_tiny.yaml")
OPERATIONS = ["zero", "skip", "conv1x1", "conv3x3", "avgpool"]
SCORES = ["sahd", "sahd_layer", "hamming", "synflow", "naswot_head"]


def analyze(tmp_path: Path, *extra: str) -> Path:
    main(["analyze", "--config", CONFIG, "--trainer.default_root_dir", str(tmp_path),
          "--trainer.logger.init_args.save_dir", str(tmp_path), *extra])
    return sorted((tmp_path / "lightning_logs").glob("version_*"))[-1]


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return analyze(tmp_path_factory.mktemp("analyze"))


SMALL = ("--studies.run", "[correlation]", "--studies.random_networks", "3")  # one study, few networks


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    """The root directory of a finished ``SMALL`` analysis (its logs and resume state): a test
    copies it into its own ``tmp_path`` before changing anything."""
    root = tmp_path_factory.mktemp("small")
    analyze(root, *SMALL)
    return root


def test_networks_csv_has_one_row_per_planned_network_with_every_score(finished):
    rows = read(finished / "networks.csv")
    assert list(rows[0]) == ["study", "key", "hash", "genotype", "cells", "macro", "bytes", "score_sahd",
                             *(f"score_{s}" for s in SCORES[1:]), "size_params", "size_bytes", "size_synops", "size_macs", "size_neurons",
                             "val_acc", "test_acc", "seed", "steps", "final_loss", "seconds"]
    assert len({r["key"] for r in rows}) == len(rows)  # one seed: one row per network
    roles = [role for r in rows for role in r["study"].split(";")]
    assert roles.count("random") == 4 and roles.count("found") == 1 and roles.count("stratum") == 2
    assert all(int(r["bytes"]) >= 14_000 for r in rows if "stratum" in r["study"])  # 70% of the tiny budget
    assert {"cells:1", "cells:2"} <= set(roles)
    # one draw per arm: without each operation, only each connecting one (zero connects nothing)
    assert sorted(r for r in roles if r.startswith(("without:", "only:"))) == sorted(
        [f"without:{op}" for op in OPERATIONS] + [f"only:{op}" for op in OPERATIONS if op != "zero"])
    for r in rows:
        assert 0.0 <= float(r["val_acc"]) <= 1.0 and 0.0 <= float(r["test_acc"]) <= 1.0
        assert 0 < int(r["bytes"]) <= 20_000 and int(r["steps"]) == 16
        assert float(r["size_bytes"]) == int(r["bytes"]) and float(r["size_params"]) * 4 <= int(r["bytes"])
        assert float(r["size_macs"]) > float(r["size_params"]) > 0 and float(r["size_neurons"]) > 0
    only_conv = [r for r in rows if "only:conv3x3" in r["study"]][0]
    assert set(op.split(":")[1] for op in only_conv["genotype"].replace("|", "").split()) <= {"conv3x3", "zero"}
    assert "conv1x1" not in [r for r in rows if "without:conv1x1" in r["study"]][0]["genotype"]
    assert len({float(r["test_acc"]) for r in rows}) > 1, "the tiny task should tell networks apart"


def test_tables_have_one_row_per_operation_cell_count_score_and_accuracy(finished):
    impact = read(finished / "impact.csv")
    assert [r["operation"] for r in impact] == OPERATIONS
    assert impact[0]["kept"] == "True"  # zero carries no signal: always kept
    assert impact[0]["only_runs"] == "0" and all(r["without_runs"] == "1" for r in impact)
    cells = read(finished / "cells.csv")
    assert [r["cells"] for r in cells] == ["1", "2"] and sum(r["chosen"] == "True" for r in cells) == 1
    assert all(float(r["search_seconds"]) > 0 and int(r["bytes"]) <= 20_000 for r in cells)
    corr = read(finished / "correlation.csv")
    predictors = [(s, "score") for s in SCORES] + [(s, "activity" if s == "synops" else "baseline") for s in SIZES] + [
        (f"{s}+bytes", "combined") for s in SCORES]
    assert [(r["population"], r["score"], r["role"], r["accuracy"]) for r in corr] == [
        (p, s, role, a) for p in ("random", "stratum") for a in ("val", "test") for s, role in predictors]
    assert {(r["population"], r["networks"]) for r in corr} == {("random", "4"), ("stratum", "2")}  # one seed: no ceiling
    assert {r["versus"] for r in corr if r["role"] in ("score", "activity", "combined") and r["population"] == "random"} <= {"macs"}
    base = read(finished / "baseline.csv")
    assert [r["accuracy"] for r in base] == ["val", "test"] and base[0]["random_networks"] == "4"
    assert base[0]["matched_networks"] == "2" and 0 < float(base[0]["found_fill"]) <= 1
    assert 0.0 <= float(base[1]["percentile"]) <= 100.0
    for name in ("impact", "cells", "correlation", "baseline"):
        assert (finished / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    report = (finished / "report.md").read_text()
    for heading in ("Operation impact", "Cell count", "Score validation", "Found vs random", "enhanced space"):
        assert heading in report
    assert "is compared with `macs`" in report and "noise ceiling" in report and "The stratum" in report
    assert "spikenas analyze --config" in report


def test_enhanced_space_parses_as_a_search_config_and_searches(finished, tmp_path, capsys):
    fragment = yaml.safe_load((finished / "enhanced_space.yaml").read_text())
    kept = [r["operation"] for r in read(finished / "impact.csv") if r["kept"] == "True"]
    chosen = [int(r["cells"]) for r in read(finished / "cells.csv") if r["chosen"] == "True"]
    assert fragment == {"space": {"operations": kept, "cells": chosen[0]}}
    main(["search", "--config", SEARCH_CONFIG, "--config", str(finished / "enhanced_space.yaml"),
          "--trainer.default_root_dir", str(tmp_path), "--trainer.logger.init_args.save_dir", str(tmp_path)])
    run = sorted((tmp_path / "lightning_logs").glob("version_*"))[-1]
    genotype = yaml.safe_load((run / "genotype.yaml").read_text())
    assert len(genotype["cells"]) == chosen[0]
    assert {edge[0] for cell in genotype["cells"] for edge in cell["edges"]} <= set(kept)


def test_a_killed_analysis_reruns_only_the_missing_networks(tmp_path, monkeypatch):
    real = ProxyTrainer.train
    calls = []

    def dies_after_three(self, *args):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is killed while training the fourth network
        calls.append(args)
        return real(self, *args)

    monkeypatch.setattr(ProxyTrainer, "train", dies_after_three)
    with pytest.raises(SystemExit) as interrupted:
        analyze(tmp_path, *SMALL)
    assert interrupted.value.code == 130  # Ctrl-C's exit status; stderr says the same command resumes
    run = tmp_path / "lightning_logs" / "version_0"
    assert len(read(run / "networks.csv")) == 3 and not (run / "report.md").exists()

    def counted(self, *args):
        calls.append(args)
        return real(self, *args)

    monkeypatch.setattr(ProxyTrainer, "train", counted)
    calls.clear()
    assert analyze(tmp_path, *SMALL) == run  # the same run directory, completed
    rows = read(run / "networks.csv")
    assert len(calls) == len(rows) - 3
    assert (run / "report.md").is_file()
    calls.clear()
    assert analyze(tmp_path, *SMALL) == run and not calls  # a finished analysis is reopened: nothing trained again
    assert read(run / "networks.csv") == rows


@pytest.mark.parametrize("extra, message", [
    (["--studies.run", "[]"], "studies.run is empty"),
    (["--studies.run", "[impact, speed]"], "unknown study 'speed'"),
    (["--search.space.operations", "[conv3x3, conv5x5]"], "unknown operation 'conv5x5'"),
    (["--search.budget", "100"], "budget 100 bytes"),
    (["--proxy.epochs", "0.01"], "the proxy recipe trains 0 steps"),
    (["--data.init_args.val_split", "0"], "needs a validation split"),
    (["--search.score_batches", "0"], "score_batches must be >= 1, got 0"),
    (["--studies.stratum_fill", "0"], "studies.stratum_fill must be in (0, 1], got 0"),
    (["--studies.stratum_networks", "-1"], "studies.stratum_networks must be >= 0, got -1"),
    (["--studies.stratum_fill", "0.999"], "study arm 'stratum': 20,000 random networks in a row were outside 19,980-20,000 bytes"),
])
def test_bad_input_is_a_one_line_error_before_training(tmp_path, monkeypatch, extra, message):
    def never(*args):
        raise AssertionError("trained a network")

    monkeypatch.setattr(ProxyTrainer, "train", never)
    with pytest.raises(SystemExit) as error:
        analyze(tmp_path, *extra)
    text = str(error.value.code)
    assert text.startswith("spikenas: error: ") and message in text and "\n" not in text
    assert not list(tmp_path.glob("lightning_logs/version_*/networks.csv"))


@pytest.mark.slow  # two processes: run by .ci/run's slow step
def test_two_processes_train_the_same_rows_as_one(finished, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "spikenas", "analyze", "--config", CONFIG,
           "--trainer.default_root_dir", str(tmp_path), "--trainer.logger.init_args.save_dir", str(tmp_path),
           "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted((tmp_path / "lightning_logs").glob("version_*"))
    assert len(runs) == 1, "only rank 0 writes a run directory"
    two = {r["key"]: r for r in read(runs[0] / "networks.csv")}
    one = {r["key"]: r for r in read(finished / "networks.csv")}
    assert two.keys() == one.keys()
    assert all(two[k]["study"] == one[k]["study"] and two[k]["score_sahd"] == one[k]["score_sahd"] for k in one)


class _Broken:
    name = "broken"

    def kernel(self, spikes):
        raise RuntimeError("no kernel today")

    def reduce(self, kernel):
        return 0.0


class _BrokenPlugin:
    @hookimpl
    def spikenas_register_scores(self, registry):
        registry.add("broken", _Broken)


def test_a_plugin_score_that_raises_is_a_one_line_error_naming_it(tmp_path):
    with temporary_plugin(_BrokenPlugin(), name="broken-score"):
        with pytest.raises(SystemExit) as error:
            analyze(tmp_path)
    text = str(error.value.code)
    assert "score 'broken' (plugin 'broken-score') raised" in text and "no kernel today" in text and "\n" not in text


@pytest.mark.parametrize("damage", ["garbage", '{"run_dir": "/tmp", "complete": false}', '{"run_dir": 5, "complete": false}',
                                    "directory"])
def test_a_damaged_or_redirecting_analyze_state_is_set_aside_saying_so(small_root, tmp_path, capsys, damage):
    shutil.copytree(small_root, tmp_path, dirs_exist_ok=True)
    state = next((tmp_path / "lightning_logs" / ".analyze_state").glob("*.json"))
    state.unlink()
    if damage == "directory":
        state.mkdir()
    else:
        state.write_text(damage)
    capsys.readouterr()
    run = analyze(tmp_path, *SMALL)
    out = capsys.readouterr().out
    assert "spikenas analyze: the resume state" in out and "moved it to" in out
    assert run == tmp_path / "lightning_logs" / "version_1" and (run / "report.md").is_file()


@pytest.mark.parametrize("forgery", ["another_run", "hidden", "unsealed"])
def test_an_analyze_state_resumes_only_into_the_directory_it_claimed(small_root, tmp_path, capsys, forgery):
    """Issue 31: analysis states carried no checksum and resumed into any folder of the logs."""
    import json

    from spikenas.base.rundir import seal

    shutil.copytree(small_root, tmp_path, dirs_exist_ok=True)
    root = tmp_path / "lightning_logs"
    state = next((root / ".analyze_state").glob("*.json"))
    victim = root / "version_7"  # a fit run's folder
    victim.mkdir()
    (victim / "config.yaml").write_text("a fit's\n")
    content = {"run_dir": str(victim if forgery != "hidden" else root / ".analyze_state"), "complete": False}
    sealed = seal(content) if forgery != "unsealed" else "0" * 64
    state.write_text(json.dumps({**content, "seal": sealed}))
    capsys.readouterr()
    analyze(tmp_path, *SMALL)
    assert "moved it to" in capsys.readouterr().out
    assert sorted(p.name for p in victim.iterdir()) == ["config.yaml"]
    assert (root / "version_8" / "report.md").is_file()
