"""``spikenas search`` through the real CLI: outputs, final.yaml, errors, two processes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from spikenas import Genotype
from spikenas.app.cli import main
from spikenas.base.errors import SpikenasError
from spikenas.data import Synthetic
from spikenas.network import SpikingNetwork
from spikenas.neuron import record_spikes
from spikenas.score import scoring_mode
from spikenas.space import MacroConfig
from spikenas.cost.synops import fan_outs, profile_layer

CONFIG = str(Path(__file__).parent / "configs" / "search_tiny.yaml")


def run_search(tmp_path: Path, *extra: str, config: str = CONFIG) -> Path:
    """``spikenas search --config config *extra`` writing under ``tmp_path``; its run directory."""
    main(["search", "--config", config, "--trainer.default_root_dir", str(tmp_path),
          "--trainer.logger.init_args.save_dir", str(tmp_path), *extra])
    runs = sorted((tmp_path / "lightning_logs").glob("version_*"))
    assert runs, "search wrote no run directory"
    return runs[-1]


def test_search_writes_every_output_and_budget_holds(tmp_path, capsys):
    run = run_search(tmp_path, "--budget", "40KB")
    for name in ("genotype.yaml", "final.yaml", "search.csv", "pareto.png", "memory.txt"):
        assert (run / name).stat().st_size > 0, name
    genotype = Genotype.from_yaml((run / "genotype.yaml").read_text())
    rows = list(csv.DictReader((run / "search.csv").open()))
    assert rows and set(rows[0]) == {"stage", "hash", "genotype", "score", "bytes", "synops", "seconds"}
    final = [r for r in rows if r["stage"] == "final"]
    assert final[0]["hash"] == genotype.hash
    assert all(int(r["bytes"]) <= 40_000 for r in rows)
    summary = [line for line in capsys.readouterr().out.splitlines() if "strategy=spikenas" in line]
    assert summary and "budget=40000" in summary[-1]


def test_final_yaml_trains_with_no_editing(tmp_path):
    run = run_search(tmp_path)
    final = yaml.safe_load((run / "final.yaml").read_text())
    assert final["model"]["genotype"] == Genotype.from_yaml((run / "genotype.yaml").read_text()).to_dict()
    # the data decides these (a datamodule swapped in final.yaml brings its own)
    assert not {"num_classes", "input_shape"} & set(final["model"]["macro"])
    main(["fit", "--config", str(run / "final.yaml"), "--trainer.fast_dev_run", "1",
          "--trainer.default_root_dir", str(tmp_path / "fit")])


def test_impossible_budget_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path, "--budget", "100")
    message = str(error.value.code)
    assert message.startswith("spikenas: error: budget 100 bytes")
    assert "smallest reachable footprint" in message and "\n" not in message


def test_unknown_operation_in_space_is_one_line_error(tmp_path):
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path, "--space.operations", "[conv3x3, conv5x5]")
    assert "unknown operation 'conv5x5'" in str(error.value.code)


def test_print_config_shows_search_settings(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--config", CONFIG, "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["strategy"] == "spikenas" and printed["space"]["cells"] == 2


@pytest.mark.parametrize("name", ["search.yaml", "search_fmnist_1mib.yaml"])
def test_shipped_search_configs_parse(name, capsys):
    """The README's and the benchmark's search configs stay valid as the options evolve."""
    with pytest.raises(SystemExit) as info:
        main(["search", "--config", str(Path(__file__).parents[1] / "configs" / name), "--print_config"])
    assert info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["budget"] and printed["data"]["class_path"] == "spikenas.data.FashionMNIST"


def test_rerun_after_a_finished_search_starts_a_new_run(tmp_path):
    first = run_search(tmp_path)
    second = run_search(tmp_path)
    assert first != second
    assert (first / "genotype.yaml").read_text() == (second / "genotype.yaml").read_text()


@pytest.mark.slow  # two processes: run by .ci/run's slow step
def test_two_processes_find_the_same_genotype_as_one(tmp_path):
    one = run_search(tmp_path / "one")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "spikenas", "search", "--config", CONFIG,
           "--trainer.default_root_dir", str(tmp_path / "two"),
           "--trainer.logger.init_args.save_dir", str(tmp_path / "two"),
           "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted((tmp_path / "two" / "lightning_logs").glob("version_*"))
    assert len(runs) == 1, "only rank 0 writes a run directory"
    assert (runs[0] / "genotype.yaml").read_text() == (one / "genotype.yaml").read_text()


def test_invalid_space_setting_is_one_line_error(tmp_path):
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path, "--space.cells", "0")
    assert str(error.value.code) == "spikenas: error: space.cells must be >= 1, got 0"


@pytest.mark.parametrize("damage", ["garbage", "", '{"records": [{"key": 1}]}', "[]"])
def test_damaged_resume_state_is_set_aside_and_the_search_restarts(tmp_path, capsys, damage):
    first = run_search(tmp_path)
    state = next((tmp_path / "lightning_logs" / ".search_state").glob("*.json"))
    state.write_text(damage)
    second = run_search(tmp_path)
    out = capsys.readouterr().out
    assert "was unreadable" in out and state.with_name(state.name + ".damaged").is_file()
    assert (second / "genotype.yaml").read_text() == (first / "genotype.yaml").read_text()


@pytest.mark.parametrize("extra, message", [
    (["--budget", "1e400"], "budget '1e400' is not a size"),
    (["--budget", "NaN"], "budget 'NaN' is not a size"),
    (["--score_batch_size", "0"], "score_batch_size must be >= 1, got 0"),
    (["--score_batches", "0"], "score_batches must be >= 1, got 0"),
    (["--sweeps", "-1"], "sweeps must be >= 1, got -1"),
    (["--rerank", "0"], "rerank must be >= 1, got 0"),
    (["--stack_bytes", "lots"], "stack_bytes 'lots' is not a size"),
    (["--stack_bytes", "none"], "stack_bytes 'none' is not a size"),
])
def test_bad_search_settings_are_one_line_errors_before_any_output(tmp_path, extra, message):
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path, *extra)
    text = str(error.value.code)
    assert text.startswith("spikenas: error: ") and message in text and "\n" not in text
    assert not list((tmp_path / "lightning_logs").glob("version_*"))


def test_ctrl_c_is_one_line_that_says_how_to_resume(tmp_path, monkeypatch, capsys):
    import spikenas.search.driver as driver

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(driver, "search", interrupted)
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path)
    assert error.value.code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "spikenas: search interrupted; the same command resumes it"


def test_memory_txt_ends_with_the_found_networks_synops_per_layer(tmp_path):
    run = run_search(tmp_path, "--budget", "40KB")
    memory, synops = (run / "memory.txt").read_text().split("\n\n")
    table = {line.split()[0]: float(line.split()[1].replace(",", "")) for line in synops.strip().splitlines()[1:]}
    layers = [line.split()[0] for line in memory.strip().splitlines()[1:-2]]
    assert list(table)[:-1] == layers  # one row per layer of the memory table, then the total
    # the same figures, measured by hand: spikes x fan-out on the scoring batch, as scored
    final = yaml.safe_load((run / "final.yaml").read_text())
    search = yaml.safe_load(open(CONFIG))
    data = Synthetic(**search["data"]["init_args"])
    macro = MacroConfig(**final["model"]["macro"], num_classes=3, input_shape=(1, 8, 8))
    network = scoring_mode(SpikingNetwork(Genotype.from_dict(final["model"]["genotype"]), macro, seed=search["search_seed"]))
    images = data.sample_batch(search["score_batch_size"], seed=search["search_seed"])
    fan, expected = fan_outs(network), {}
    with torch.no_grad(), record_spikes(network, lambda n, s: expected.__setitem__(profile_layer(n), expected.get(profile_layer(n), 0.0) + float(s.sum()) * fan[n] / len(images)), named=True):
        network(images)
    assert sum(expected.values()) > 0
    for layer, value in expected.items():
        assert table[layer] == pytest.approx(value, abs=0.51)  # the table rounds to whole SynOps
    assert table["total"] == pytest.approx(sum(expected.values()), abs=0.51)


@pytest.mark.parametrize("text, message", [
    ("- a\n- b\n", "is a YAML list, not a mapping of settings"),
    ("model: [unclosed\n", "is not valid YAML: expected ',' or ']'"),
    (None, "cannot read config"),
])
def test_a_bad_config_file_is_one_line_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    if text is not None:
        path.write_text(text)
    for command in ("search", "fit", "profile"):
        with pytest.raises(SystemExit) as error:
            main([command, "--config", str(path)])
        line = str(error.value.code)
        assert line.startswith("spikenas: error: ") and message in line and str(path) in line and "\n" not in line


@pytest.mark.parametrize("channels, message", [
    ("[60000]", "the largest network of the space (macro channels=60000"),
    ("[1000000000]", "macro channels must be at most 65,536"),
])
def test_a_space_too_large_for_this_machine_is_refused_before_anything_is_allocated(tmp_path, channels, message):
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path, "--space.channels", channels)
    line = str(error.value.code)
    assert line.startswith("spikenas: error: ") and message in line and "\n" not in line
    assert not (tmp_path / "lightning_logs").exists()  # nothing written


def test_fit_refuses_a_network_larger_than_this_machines_memory(tmp_path):
    run = run_search(tmp_path)
    with pytest.raises(SystemExit) as error:
        main(["fit", "--config", str(run / "final.yaml"), "--model.macro.channels", "60000",
              "--trainer.default_root_dir", str(tmp_path / "fit")])
    line = str(error.value.code)
    assert "the network (model.macro channels=60000" in line and "more than this machine's" in line and "\n" not in line


def test_the_same_search_started_while_one_runs_stops_with_one_line(tmp_path):
    import filelock

    run_search(tmp_path)
    state = next((tmp_path / "lightning_logs" / ".search_state").glob("*.json"))
    with filelock.FileLock(str(state) + ".lock"):  # as a search still running would
        with pytest.raises(SystemExit) as error:
            run_search(tmp_path)
    message = str(error.value.code)
    assert message.startswith("spikenas: error: another search with the same settings is running") and "\n" not in message
    assert len(list((tmp_path / "lightning_logs").glob("version_*"))) == 1  # nothing claimed meanwhile


def test_a_fixed_version_never_overwrites_an_earlier_run(tmp_path, capsys):
    fixed = ("--trainer.logger.init_args.version", "0")
    first = run_search(tmp_path, *fixed)
    before = (first / "final.yaml").read_text()
    run_search(tmp_path, "--budget", "40KB", *fixed)  # other settings: a new run, same version asked
    assert (first / "final.yaml").read_text() == before
    assert (tmp_path / "lightning_logs" / "version_1" / "final.yaml").is_file()
    assert f"{first} holds another run; this run writes to" in capsys.readouterr().out


def test_two_runs_asking_for_the_same_fixed_version_get_different_directories(tmp_path):
    """Both started before either wrote a file: the second claim must not share the first's
    directory (each run's logger may have created it already)."""
    from types import SimpleNamespace

    from spikenas.base.rundir import claim_run_dir

    root = tmp_path / "lightning_logs"
    fixed = root / "version_5"
    fixed.mkdir(parents=True)  # as a logger makes it
    trainer = SimpleNamespace(logger=SimpleNamespace(log_dir=str(fixed)))
    first, second = claim_run_dir(trainer, root), claim_run_dir(trainer, root)
    assert first == fixed and second == root / "version_6"
    assert not second.exists()  # made by the first result: a run killed before it leaves no empty directory
    outside = SimpleNamespace(logger=SimpleNamespace(log_dir=str(tmp_path / "mine" / "v5")))
    claim_run_dir(outside, root)
    with pytest.raises(SpikenasError, match="already holds another run"):
        claim_run_dir(outside, root)


@pytest.mark.parametrize("where", ["file", "long"])
def test_an_unwritable_save_dir_is_one_line_error(tmp_path, where):
    target = tmp_path / "taken"
    if where == "file":
        target.write_text("not a directory")
    else:
        target = tmp_path / ("x" * 300)
    with pytest.raises(SystemExit) as error:
        main(["search", "--config", CONFIG, "--trainer.default_root_dir", str(target),
              "--trainer.logger.init_args.save_dir", str(target)])
    message = str(error.value.code)
    assert message.startswith("spikenas: error: cannot write the search state in") and "\n" not in message
    assert ("Not a directory" if where == "file" else "File name too long") in message


def test_a_spawning_strategy_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path, "--trainer.strategy", "ddp_spawn", "--trainer.devices", "2")
    assert str(error.value.code) == ("spikenas: error: search does not run under a spawning strategy "
                                     "(ddp_spawn, ddp_fork, ...); use --trainer.strategy ddp")
    assert not (tmp_path / "lightning_logs").exists()


def test_a_full_disk_while_writing_leaves_no_partial_results_and_the_rerun_writes_them(tmp_path, monkeypatch):
    import errno

    import spikenas.search.outputs as outputs

    real = outputs.write_pareto

    def full_disk(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs, "write_pareto", full_disk)
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path)
    message = str(error.value.code)
    assert message.startswith("spikenas: error: cannot write the results to") and "No space left on device" in message
    run = tmp_path / "lightning_logs" / "version_0"
    assert not run.exists()  # not 3 of 5 files, no staging directory, no empty run
    monkeypatch.setattr(outputs, "write_pareto", real)
    assert run_search(tmp_path) == run  # resumed: the same run directory, now complete
    assert sorted(p.name for p in run.iterdir()) == ["final.yaml", "genotype.yaml", "memory.txt", "pareto.png", "search.csv"]


@pytest.mark.parametrize("enabled", ["true", "false"])
def test_search_progress_follows_the_trainers_progress_bar_setting(tmp_path, capsys, enabled):
    run_search(tmp_path, "--trainer.enable_progress_bar", enabled)
    drawn = "spikenas cell 1/2" in capsys.readouterr().err
    assert drawn == (enabled == "true")


@pytest.mark.parametrize("extra, message", [
    (["--budget", "1e300GiB"], "budget '1e300GiB' is not a size"),
    (["--budget", "9" * 400], "is more than 1.00 PiB: no network is that large"),
    (["--stack_bytes", "9" * 400], "stack_bytes 99"),
    (["--search_seed", "9" * 400], "search_seed must be an integer in 0..2**63-1"),
    (["--budget", "{memory: 256KiB, synops: " + "9" * 400 + "}"], "synops"),
    (["--model.macro.timesteps", "1000000000"], "macro timesteps must be at most 10,000"),
    (["--model.macro.timesteps", "10000", "--space.channels", "[4096]"], "of activations), more than this machine's"),
])
def test_values_nobody_means_are_one_line_before_anything_is_allocated(tmp_path, extra, message):
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path, *extra)
    line = str(error.value.code)
    assert line.startswith("spikenas: error: ") and message in line and "\n" not in line, line



def test_a_huge_integer_for_a_float_setting_is_one_line(tmp_path):
    """Found by the fuzz suite: jsonargparse's OverflowError escaped as a traceback."""
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path, "--model.neuron.threshold", "9" * 400)
    line = str(error.value.code)
    assert line.startswith("spikenas: error: search: a number in the settings is too large") and "\n" not in line


@pytest.mark.parametrize("extra, message", [
    (["--space.nodes", "1000000"], "space.nodes must be 2..64, got 1000000"),
    (["--space.nodes", "1"], "space.nodes must be 2..64, got 1"),
    (["--space.cells", "100000000"], "space.cells must be at most 64"),
])
def test_a_space_too_large_to_enumerate_is_refused_before_anything_is_allocated(tmp_path, extra, message):
    """Found by the fuzz suite: --space.nodes 1000000 listed its 5e11 node pairs (22 GB, then
    the kernel's OOM killer) before any check."""
    with pytest.raises(SystemExit) as error:
        run_search(tmp_path, *extra)
    line = str(error.value.code)
    assert line.startswith("spikenas: error: ") and message in line and "\n" not in line
