"""bench/ledger.py and bench/budget_fmnist.py's use of it: a long bench's finished picks and
trainings are kept, reused only for the same network at the same training code, written whole
by concurrent processes, and reported as partial while a seed is missing."""

from __future__ import annotations

import importlib
import multiprocessing
import sys
from pathlib import Path

import pytest
import yaml

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
ledger_module = importlib.import_module("ledger")
budget_fmnist = importlib.import_module("budget_fmnist")
Ledger = ledger_module.Ledger


def final_yaml(path: Path, channels: int = 32, root: str = "/a/machine") -> Path:
    path.write_text(yaml.safe_dump({
        "trainer": {"default_root_dir": root, "max_epochs": 20},
        "model": {"macro": {"channels": channels, "timesteps": 5}, "quantization": {"weight_bits": 8}},
        "data": {"class_path": "spikenas.data.FashionMNIST",
                 "init_args": {"root": root, "system_dir": root, "batch_size": 32, "num_workers": 0}}}))
    return path


def test_a_network_hashes_alike_on_any_machine_and_apart_from_another_network(tmp_path):
    here = ledger_module.network_hash(final_yaml(tmp_path / "a.yaml"))
    assert ledger_module.network_hash(final_yaml(tmp_path / "b.yaml", root="/another/one")) == here
    assert ledger_module.network_hash(final_yaml(tmp_path / "c.yaml", channels=64)) != here


def test_a_recorded_pick_is_kept_in_the_ledger_and_a_tampered_one_refused(tmp_path):
    ledger = Ledger(tmp_path / "ledger")
    assert ledger.pick("64KiB", "D") is None
    kept = ledger.record_pick("64KiB", "D", final_yaml(tmp_path / "final.yaml"), 812.34)
    (tmp_path / "final.yaml").unlink()
    assert ledger.pick("64KiB", "D") == (kept, 812.3)
    final_yaml(kept, channels=8)
    with pytest.raises(ValueError, match="64KiB-D.yaml: does not hash to its searches.csv row"):
        ledger.pick("64KiB", "D")


def test_a_training_is_reused_only_for_the_same_network_seed_epochs_and_code(tmp_path):
    final = final_yaml(tmp_path / "final.yaml")
    ledger = Ledger(tmp_path / "ledger")
    ledger.record_accuracy("64KiB", "A8", 0, 5, final, 0.90531)
    assert ledger.accuracy("64KiB", "A8", 0, 5, final) == 0.9053
    assert ledger.accuracy("64KiB", "A8", 1, 5, final) is None
    assert ledger.accuracy("64KiB", "A8", 0, 4, final) is None
    assert ledger.accuracy("64KiB", "A8", 0, 5, final_yaml(tmp_path / "other.yaml", channels=64)) is None
    ledger.code = "changed-code"
    assert ledger.accuracy("64KiB", "A8", 0, 5, final) is None


def _record_many(directory: str, final: str, arm: str) -> None:
    ledger = Ledger(Path(directory))
    for seed in range(10):
        ledger.record_accuracy("64KiB", arm, seed, 5, Path(final), 0.5 + seed / 100)


def test_two_processes_recording_at_once_lose_no_row(tmp_path):
    final = final_yaml(tmp_path / "final.yaml")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_record_many, args=(str(tmp_path / "ledger"), str(final), arm)) for arm in ("A8", "D")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    ledger = Ledger(tmp_path / "ledger")
    assert [ledger.accuracy("64KiB", arm, s, 5, final) for arm in ("A8", "D") for s in range(10)] == [round(0.5 + s / 100, 4) for s in range(10)] * 2


def test_the_bench_trains_only_what_the_ledger_lacks_seed_by_seed(tmp_path, monkeypatch):
    finals = {arm: final_yaml(tmp_path / f"{arm}.yaml", channels=c) for arm, c in (("A8", 32), ("D", 64))}
    ledger = Ledger(tmp_path / "ledger")
    ledger.record_accuracy("64KiB", "A8", 0, 5, finals["A8"], 0.9)
    trained = []

    def fake_train(final, directory, seed, epochs, extra):
        trained.append(directory.relative_to(tmp_path / "out").as_posix())
        return 0.8 + seed / 100

    monkeypatch.setattr(budget_fmnist, "train_and_test", fake_train)
    runs = [("64KiB", arm, seed, finals[arm]) for seed in (0, 1) for arm in ("A8", "D")]
    found = budget_fmnist.train_all(runs, tmp_path / "out", 5, [], 1, ledger)
    assert trained == ["64KiB/D/seed0", "64KiB/A8/seed1", "64KiB/D/seed1"]
    assert [found[run] for run in runs] == [0.9, 0.8, 0.81, 0.81]
    assert ledger.accuracy("64KiB", "D", 1, 5, finals["D"]) == 0.81


def test_the_last_line_is_partial_until_every_arm_has_every_seed(tmp_path, capsys):
    finals = {arm: tmp_path / f"{arm}.yaml" for arm in ("A8", "D")}
    for arm, path in finals.items():
        path.write_text(yaml.safe_dump({"model": {"macro": {"timesteps": 5, "channels": 64, "head_pool": 2},
                                                  "quantization": {"weight_bits": 8 if arm == "A8" else 4},
                                                  "genotype": {"cells": [{}]}}}))
    seconds = {"A8": 3.0, "D": 812.0}
    partial = budget_fmnist.summary("64KiB", [0, 1, 2], ["A8", "D"], finals, seconds, {"A8": {0: 0.90, 1: 0.91, 2: 0.90}, "D": {0: 0.92, 1: 0.92}})
    assert partial.startswith("partial budget=64KiB A=- A8=0.9033 C=- D=0.9200 E=- d_minus_a8=+0.0150")
    no_pick = budget_fmnist.summary("64KiB", [0, 1], ["A8", "D", "E"], finals, seconds, {"A8": {0: 0.90, 1: 0.91}, "D": {0: 0.92, 1: 0.92}})
    assert no_pick.startswith("partial budget=64KiB")
    whole = budget_fmnist.summary("64KiB", [0, 1], ["A8", "D"], finals, seconds, {"A8": {0: 0.90, 1: 0.91}, "D": {0: 0.92, 1: 0.92}})
    assert whole.startswith("budget=64KiB A=- A8=0.9050 C=- D=0.9200 E=- d_minus_a8=+0.0150 d_minus_a8_low=")
    assert whole.endswith("d_search_s=812")
    printed = capsys.readouterr().out
    assert "64KiB D: test_acc=0.9200 [0.9200, 0.9200] (0.9200, 0.9200) search_s=812.0 4-bit, 1 cells" in printed
    assert "minus_A8=+0.0150 [" in printed


def test_retiming_a_search_records_its_new_time_only_for_the_same_pick(tmp_path, monkeypatch):
    ledger = Ledger(tmp_path / "ledger")
    kept = ledger.record_pick("64KiB", "D", final_yaml(tmp_path / "first.yaml"), 1624.2)
    recorded = kept.read_text()
    again = final_yaml(tmp_path / "again.yaml", root="/elsewhere")
    monkeypatch.setattr(budget_fmnist, "search_now", lambda arm, budget, directory, quick: (again, 505.3))
    assert budget_fmnist.retime("D", "64KiB", tmp_path / "out", ledger) == 505.3
    assert ledger.pick("64KiB", "D") == (kept, 505.3)
    assert kept.read_text() == recorded, "a retime must keep the pick file as its trainings read it"
    other = final_yaml(tmp_path / "other.yaml", channels=48)
    monkeypatch.setattr(budget_fmnist, "search_now", lambda arm, budget, directory, quick: (other, 400.0))
    with pytest.raises(SystemExit, match="now picks another network"):
        budget_fmnist.retime("D", "64KiB", tmp_path / "out", ledger)
    assert ledger.pick("64KiB", "D")[1] == 505.3
    with pytest.raises(SystemExit, match="no 64KiB pick of E"):
        budget_fmnist.retime("E", "64KiB", tmp_path / "out", ledger)
