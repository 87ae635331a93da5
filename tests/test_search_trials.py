"""The short-training stage of a search that chooses by trials: successive halving through an
Optuna study, the winner, failures, resume after a kill, and two workers on one study."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from conftest import ROOT
from spikenas import SpikenasError
from spikenas.search.candidates import Candidate
from spikenas.search.trial_settings import TrialSettings
from spikenas.search.trials import STUDY_FILE, TrialRow, choose, run_trials
from spikenas.space.genotype import Genotype
from spikenas.space.macro import MacroConfig

GENOTYPE = Genotype.from_dict({"cells": [{"nodes": 3, "edges": [["conv3x3", 0, 1], ["skip", 0, 2], ["conv1x1", 1, 2]]}]})


def candidates(n: int) -> list[Candidate]:
    """``n`` candidates told apart by width (their keys differ)."""
    return [Candidate(MacroConfig(channels=4 + i), GENOTYPE, 8, 1000 + i, 500 - i, 0.0, 0.5) for i in range(n)]


def fake_training(curves: dict[str, list[float]], log: list[tuple[str, int]] | None = None, stop_at: str | None = None):
    """A ``train`` for :func:`run_trials` that reports ``curves[key]`` chunk by chunk through
    the callbacks, as Lightning would call them (``log`` records every chunk trained;
    ``stop_at``: that candidate's training is killed by Ctrl-C after its first chunk)."""

    def train(candidate, callbacks):
        curve = curves[candidate.key]
        for chunk, accuracy in enumerate(curve):
            if log is not None:
                log.append((candidate.key, chunk + 1))
            trainer = SimpleNamespace(sanity_checking=False, callback_metrics={"val/acc": accuracy}, current_epoch=chunk,
                                      max_epochs=len(curve))
            for callback in callbacks:
                callback.on_validation_end(trainer, None)
            if candidate.key == stop_at:
                raise KeyboardInterrupt
        return curve[-1]

    return train


def test_successive_halving_trains_the_best_fully_and_prunes_the_rest_early(tmp_path):
    pool = candidates(6)
    settings = TrialSettings(rungs=3, reduction_factor=3)  # 9 chunks, rungs after 1 and 3
    # the first candidate sets each rung's bar; the fourth is better at every chunk
    finals = [0.80, 0.60, 0.55, 0.90, 0.50, 0.70]
    curves = {c.key: [f - 0.1 * (1 - (i + 1) / 9) for i in range(9)] for c, f in zip(pool, finals)}
    log: list[tuple[str, int]] = []
    table = run_trials(pool, settings, fake_training(curves, log), tmp_path, "study", 0, say=lambda _: None)
    winner = choose(table)
    assert winner.candidate is pool[3] and winner.state == "COMPLETE" and winner.chunks == 9
    states = {row.candidate.key: row.state for row in table}
    assert [states[c.key] for c in pool] == ["COMPLETE", "PRUNED", "PRUNED", "COMPLETE", "PRUNED", "PRUNED"]
    assert len(log) < 0.5 * 9 * len(pool)  # pruning saved more than half of the training
    assert (tmp_path / STUDY_FILE).is_file()


def test_a_candidate_whose_training_raises_is_failed_with_its_reason_and_the_others_go_on(tmp_path):
    pool = candidates(3)
    curves = {c.key: [0.5, 0.6, 0.7] for c in pool}
    curves[pool[2].key] = [0.6, 0.7, 0.8]
    base = fake_training(curves)

    def train(candidate, callbacks):
        if candidate is pool[1]:
            raise SpikenasError("the network does not fit in memory")
        return base(candidate, callbacks)

    table = run_trials(pool, TrialSettings(rungs=2, reduction_factor=3), train, tmp_path, "s", 0, say=lambda _: None)
    assert table[1].state == "FAIL" and "does not fit in memory" in table[1].note
    assert choose(table).candidate is pool[2]


def test_no_trained_candidate_is_one_line_naming_each():
    pool = candidates(2)
    with pytest.raises(SpikenasError, match="no trial trained") as error:
        choose([TrialRow(c, "FAIL", (), 0.0, "boom") for c in pool])
    assert "\n" not in str(error.value) and pool[0].key in str(error.value)


def test_a_killed_study_resumes_retrying_the_cut_off_trial_and_retraining_nothing_finished(tmp_path):
    pool = candidates(4)
    curves = {c.key: [0.5 + 0.05 * i, 0.6 + 0.05 * i, 0.7 + 0.05 * i] for i, c in enumerate(pool)}
    settings = TrialSettings(rungs=2, reduction_factor=3)
    first: list[tuple[str, int]] = []
    with pytest.raises(KeyboardInterrupt):
        run_trials(pool, settings, fake_training(curves, first, stop_at=pool[2].key), tmp_path, "s", 0, say=lambda _: None)
    second: list[tuple[str, int]] = []
    table = run_trials(pool, settings, fake_training(curves, second), tmp_path, "s", 0, say=lambda _: None)
    assert {key for key, _ in first if key in (pool[0].key, pool[1].key)} == {pool[0].key, pool[1].key}
    assert {key for key, _ in second} == {pool[2].key, pool[3].key}  # the finished two are not trained again
    assert choose(table).candidate is pool[3]
    uninterrupted = run_trials(pool, settings, fake_training(curves), tmp_path / "fresh", "s", 0, say=lambda _: None)
    assert choose(uninterrupted).candidate is pool[3]  # the same choice as a run never stopped


def test_joining_a_study_of_other_candidates_is_refused_in_one_line(tmp_path):
    curves = {c.key: [0.5] for c in candidates(3)}
    run_trials(candidates(2), TrialSettings(rungs=1), fake_training(curves), tmp_path, "s", 0, say=lambda _: None)
    with pytest.raises(SpikenasError, match="holds another search's candidates") as error:
        run_trials(candidates(3), TrialSettings(rungs=1), fake_training(curves), tmp_path, "s", 0, say=lambda _: None)
    assert "\n" not in str(error.value)


WORKER = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, {tests!r})
    from test_search_trials import candidates, fake_training
    from spikenas.search.trial_settings import TrialSettings
    from spikenas.search.trials import choose, run_trials
    pool = candidates(6)
    curves = {{c.key: [0.5 + 0.01 * i, 0.6 + 0.01 * i] for i, c in enumerate(pool)}}
    trained = []
    slow = fake_training(curves, trained)
    def train(candidate, callbacks):
        time.sleep(0.3)  # long enough that both workers take trials
        return slow(candidate, callbacks)
    settings = TrialSettings(rungs=1, storage={storage!r})
    table = run_trials(pool, settings, train, {run_dir!r} + str(os.getpid()), "shared", 0, say=lambda _: None)
    print(json.dumps({{"trained": sorted({{k for k, _ in trained}}), "winner": choose(table).candidate.key,
                      "states": [r.state for r in table]}}))
""")


@pytest.mark.slow  # two worker processes, each importing torch: tens of seconds
def test_two_worker_processes_share_one_study_and_train_every_candidate_once(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    script = WORKER.format(tests=str(ROOT / "tests"), storage=storage, run_dir=str(tmp_path / "run"))
    workers = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=ROOT) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err[-2000:] for _, err in outputs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    pool = candidates(6)
    assert results[0]["winner"] == results[1]["winner"] == pool[5].key
    assert all(r["states"] == ["COMPLETE"] * 6 for r in results)
    trained = [set(r["trained"]) for r in results]
    assert trained[0] and trained[1], "one worker trained nothing"
    assert not trained[0] & trained[1] and trained[0] | trained[1] == {c.key for c in pool}


@pytest.mark.parametrize("settings, message", [
    (dict(epochs=0), "trials.epochs must be a number > 0"),
    (dict(rungs=0), "trials.rungs must be an integer in 1.."),
    (dict(reduction_factor=1), "trials.reduction_factor must be an integer in 2.."),
    (dict(headrooms=[1.0]), "trials.headrooms must be a non-empty list"),
    (dict(storage="study.db"), "trials.storage must be a database URL"),
    (dict(rungs=12, reduction_factor=10), "chunks per trial"),
])
def test_bad_trial_settings_are_one_line_errors(settings, message):
    with pytest.raises(SpikenasError, match=message) as error:
        TrialSettings(**settings).check()
    assert "\n" not in str(error.value)


def test_an_unreachable_storage_is_one_line(tmp_path):
    pool = candidates(1)
    with pytest.raises(SpikenasError, match="cannot be opened") as error:
        run_trials(pool, TrialSettings(storage="nosuchdriver://x/y"), fake_training({}), tmp_path, "s", 0, say=print)
    assert "\n" not in str(error.value)


def test_a_multi_process_trainer_is_refused_in_one_line_naming_the_way_to_scale_out():
    from spikenas.base.workers import Workers
    from spikenas.search.by_trials import choose_by_trials
    from spikenas.search.records import RecordLog
    from spikenas.search.settings import SearchSettings

    with pytest.raises(SpikenasError, match="trials.storage") as error:
        choose_by_trials(None, None, None, SearchSettings(choose="trials"), [], RecordLog(), "key", Workers(0, 2))
    assert "\n" not in str(error.value)
