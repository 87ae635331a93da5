"""Fuzzing the real CLI in-process: whatever a user hands it (settings, genotypes, resume states,
checkpoints), ``spikenas`` either succeeds or exits with exactly one ``spikenas: error:`` line,
and leaves no file behind but a complete result set.

Hypothesis draws the inputs; ``SPIKENAS_FUZZ_EXAMPLES`` sets the examples per test (CI: the
default 12; a long run: ``SPIKENAS_FUZZ_EXAMPLES=500 pytest tests/test_fuzz.py``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikenas.cli import main

CONFIG = str(Path(__file__).parent / "configs" / "search_tiny.yaml")
RESULTS = {"genotype.yaml", "final.yaml", "search.csv", "pareto.png", "memory.txt"}
FUZZ = settings(max_examples=int(os.environ.get("SPIKENAS_FUZZ_EXAMPLES", "12")), deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

numbers = st.one_of(st.integers(-10, 10**30), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["nan", "inf", "-1", "0", "1e400", "9" * 400, "", "1e-9"]))
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24)
sizes = st.one_of(numbers, texts, st.sampled_from(["256KiB", "20KB", "1e300GiB", "{memory: 1KB}", "{synops: -1}",
                                                   "{memory: 40KB, synops: 2e6}", "{colour: red}", "[1, 2]"]))
OVERRIDES = {
    "--budget": sizes,
    "--stack_bytes": sizes,
    "--search_seed": numbers,
    "--score_batch_size": st.integers(-2, 50),
    "--sweeps": st.integers(-1, 3),
    "--space.nodes": st.integers(-3, 100),
    "--space.cells": st.integers(-1, 4),
    "--space.channels": st.lists(st.integers(-4, 10**10), max_size=3).map(json.dumps),
    "--space.operations": st.lists(st.sampled_from(["skip", "conv3x3", "zero", "conv9x9", "", "avgpool"]), max_size=3).map(json.dumps),
    "--model.macro.timesteps": st.integers(-2, 10**10),
    "--model.neuron.threshold": numbers,
    "--strategy": st.sampled_from(["spikenas", "random", "evolution", "annealing", ""]),
}


def run(args: list[str]) -> str | None:
    """``main(args)``: None when it succeeded, its one error line otherwise (asserted: one
    ``spikenas: error:`` line and no traceback)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(args)
            code = None
        except SystemExit as exit_:
            code = exit_.code
    assert "Traceback" not in err.getvalue(), err.getvalue()[-2000:]
    if code in (None, 0):
        return None
    message = str(code)
    assert message.startswith("spikenas: error: ") and "\n" not in message, message[:3000]
    return message


def only_complete_results(root: Path) -> None:
    """Every run directory holds the whole result set; nothing else is left but hidden state."""
    logs = root / "lightning_logs"
    for entry in logs.iterdir() if logs.exists() else []:
        if entry.name.startswith("."):
            continue
        names = {p.name for p in entry.iterdir()}
        assert names == RESULTS, f"{entry}: {sorted(names)}"


def search_args(directory: str, *extra: str) -> list[str]:
    return ["search", "--config", CONFIG, "--trainer.default_root_dir", directory,
            "--trainer.logger.init_args.save_dir", directory, "--trainer.enable_progress_bar", "false", *extra]


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(OVERRIDES)), st.none(), max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({k: OVERRIDES[k] for k in keys})))
def test_search_settings_succeed_or_fail_in_one_line(overrides):
    extra = [item for key, value in overrides.items() for item in (key, str(value))]
    with tempfile.TemporaryDirectory() as directory:
        run(search_args(directory, *extra))
        only_complete_results(Path(directory))


edges = st.lists(st.tuples(st.sampled_from(["skip", "conv3x3", "conv1x1", "avgpool", "zero", "gelu", 3, None]),
                           st.integers(-2, 6), st.one_of(st.integers(-2, 6), st.text(max_size=2))), max_size=7)
cells = st.one_of(
    st.fixed_dictionaries({"nodes": st.one_of(st.integers(-1, 8), st.just(10**8), st.text(max_size=3)),
                           "edges": edges.map(lambda es: [list(e) for e in es])}),
    st.fixed_dictionaries({"cnt_mat": st.one_of(st.text(alphabet="0123456 ²", max_size=20),
                                                st.lists(st.text(alphabet="01234", max_size=5), max_size=5))}),
    st.dictionaries(st.sampled_from(["nodes", "edges", "cnt_mat", "colour"]), st.integers(0, 5), max_size=3),
    st.integers(), st.none(),
)
genotypes = st.one_of(st.fixed_dictionaries({"cells": st.lists(cells, max_size=3)}), st.lists(cells, max_size=2),
                      st.text(max_size=10), st.none())


@FUZZ
@given(genotypes)
def test_genotypes_profile_or_fail_in_one_line(genotype):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "final.yaml"
        path.write_text(yaml.safe_dump({"model": {"genotype": genotype, "macro": {"channels": 4, "timesteps": 2}},
                                        "data": {"class_path": "spikenas.data.Synthetic",
                                                 "init_args": {"num_classes": 3, "input_shape": [1, 8, 8]}}}))
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["profile", "--config", str(path)])
                code = None
            except SystemExit as exit_:
                code = exit_.code
        assert code is None or (str(code).startswith("spikenas: error: ") and "\n" not in str(code)), str(code)[:2000]
        assert "Traceback" not in err.getvalue()


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    directory = tmp_path_factory.mktemp("searched")
    assert run(search_args(str(directory))) is None
    state = next((directory / "lightning_logs" / ".search_state").glob("*.json"))
    return directory, state, state.read_bytes()


payloads = st.one_of(st.binary(max_size=300), texts.map(str.encode),
                     st.recursive(st.one_of(st.none(), st.booleans(), numbers, texts),
                                  lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(st.sampled_from(["meta", "records", "run_dir",
                                                                                           "complete", "checksum", "score"]),
                                                                          inner, max_size=4)),
                                  max_leaves=12).map(lambda v: json.dumps(v).encode()))


@FUZZ
@given(payloads)
def test_a_damaged_search_state_never_breaks_or_redirects_a_rerun(searched, payload):
    directory, state, _ = searched
    state.write_bytes(payload)
    assert run(search_args(str(directory))) is None  # set aside (or resumed): the search completes
    only_complete_results(directory)
    for aside in state.parent.glob("*.damaged*"):
        aside.unlink()


@FUZZ
@given(st.one_of(st.binary(max_size=2000), st.sampled_from(["dict", "list", "nested", "payload"])))
def test_a_checkpoint_of_any_content_is_refused_in_one_line(searched, content):
    directory, _, _ = searched
    final = next((directory / "lightning_logs").glob("version_*/final.yaml"))
    with tempfile.TemporaryDirectory() as scratch:
        ckpt = Path(scratch) / "x.ckpt"
        if isinstance(content, bytes):
            ckpt.write_bytes(content)
        elif content == "payload":
            ckpt.write_bytes(pickle.dumps({"state_dict": {}, "x": os.getpid}))  # a global: refused
        else:
            torch.save({"dict": {"state_dict": {"w": torch.ones(2)}}, "list": [1, 2],
                        "nested": {"state_dict": {"a": {"b": 1}}, "hyper_parameters": {"genotype": "zz"}}}[content], ckpt)
        message = run(["test", "--config", str(final), "--ckpt_path", str(ckpt), "--trainer.enable_progress_bar", "false",
                       "--trainer.logger", "false"])
        assert message is not None and "checkpoint" in message
