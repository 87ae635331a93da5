"""bench/choose_score.py: the default score is chosen on validation τ of one analysis and
judged against the reference baseline of another, on hand-made correlation tables."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "choose_score.py"
FIELDS = ["population", "score", "role", "accuracy", "networks", "kendall_tau", "tau_low", "tau_high", "kendall_p", "spearman_rho",
          "versus", "margin_low", "margin_high", "verdict"]


def load():
    spec = importlib.util.spec_from_file_location("choose_score", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(run: Path, rows: list[tuple]) -> Path:
    run.mkdir(parents=True)
    with (run / "correlation.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        for score, role, accuracy, tau, verdict, *population in rows:
            writer.writerow({"population": (population or ["random"])[0], "score": score, "role": role, "accuracy": accuracy, "networks": 30, "kendall_tau": tau,
                             "tau_low": tau - 0.2, "tau_high": tau + 0.2, "kendall_p": 0.01, "spearman_rho": tau,
                             "versus": "macs" if role in ("score", "combined") else "", "margin_low": -0.1,
                             "margin_high": 0.1, "verdict": verdict})
    return run


def test_validation_chooses_and_the_held_out_run_judges(tmp_path, capsys):
    selection = write(tmp_path / "quick", [
        ("sahd", "score", "val", 0.20, "tie"), ("hamming", "score", "val", 0.30, "tie"),
        ("sahd", "score", "test", 0.50, "beats"), ("hamming", "score", "test", 0.10, "loses"),
        ("sahd+bytes", "combined", "val", 0.90, "beats"),  # not a searchable score
        ("bytes", "baseline", "val", 0.95, ""),
    ])
    held_out = write(tmp_path / "medium", [
        ("hamming", "score", "val", 0.25, "loses"), ("hamming", "score", "test", 0.22, "loses"),
        ("macs", "baseline", "val", 0.40, ""), ("bytes", "baseline", "test", 0.45, ""),  # the best: not the reference
        ("macs", "baseline", "test", 0.41, ""), ("synops", "activity", "test", 0.50, "beats"),
        ("mean_of_2_seeds", "ceiling", "test", 0.60, ""),
        ("hamming", "score", "test", 0.90, "beats", "stratum"), ("mean_of_2_seeds", "ceiling", "test", 0.3, "", "stratum"),
    ])
    load().main([str(selection), str(held_out)])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == ("chosen=hamming selection_tau=0.300 heldout_tau=0.220 heldout_baseline=macs "
                    "heldout_baseline_tau=0.410 verdict=loses ceiling=0.6")


def test_a_held_out_run_without_the_chosen_score_says_how_to_add_it(tmp_path):
    selection = write(tmp_path / "quick", [("naswot_head", "score", "val", 0.3, "tie")])
    held_out = write(tmp_path / "medium", [("sahd", "score", "val", 0.3, "tie"), ("macs", "baseline", "val", 0.4, "")])
    with pytest.raises(SystemExit, match="did not measure score 'naswot_head': re-run its analyze command"):
        load().main([str(selection), str(held_out)])


def test_a_directory_without_a_correlation_table_is_named(tmp_path):
    with pytest.raises(SystemExit, match="correlation.csv not found"):
        load().main([str(tmp_path), str(tmp_path)])
