"""Fuzzing the real CLI in-process with what users hand it: settings, genotypes, whole configs,
resume states (damaged, and forged with a valid checksum) and checkpoints of any content.

For every example ``spikenas`` either succeeds or exits with exactly one ``spikenas: error:``
line and no traceback, and it changes nothing outside its own run directory (a sandbox of victim
files around the logs root is compared before and after). Inputs are drawn afresh on every run;
see :mod:`fuzzing` for the budgets, the seed and the long run (``-m fuzz``). The other fuzz
files: ``test_fuzz_files.py`` (hostile checkpoints, NIR files, URLs) and ``test_fuzz_disk.py``
(a full disk at every write).
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import (ANALYZE_CONFIG, BUDGETS, RESULTS, SEARCH_CONFIG, copy_tree, fuzz, outcome, sandbox,
                     search_args)
from spikenas.base.rundir import seal
from spikenas.search.records import _checksum

numbers = st.one_of(st.integers(-10, 10**30), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["nan", "inf", "-1", "0", "1e400", "9" * 400, "", "1e-9"]))
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24)
sizes = st.one_of(numbers, texts, st.sampled_from(["256KiB", "20KB", "1e300GiB", "{memory: 1KB}", "{synops: -1}", "inf",
                                                   "{memory: 40KB, synops: 2e6}", "{colour: red}", "[1, 2]", "Infinity"]))
OVERRIDES = {
    "--budget": sizes,
    "--stack_bytes": sizes,
    "--search_seed": numbers,
    "--score_batch_size": st.integers(-2, 50),
    "--sweeps": st.integers(-1, 3),
    # each valid value small (a valid search must end in seconds), each huge one refused before it runs
    "--space.nodes": st.one_of(st.integers(-3, 6), st.sampled_from([65, 100, 10**6])),
    "--space.cells": st.integers(-1, 4),
    "--space.channels": st.lists(st.one_of(st.integers(-4, 16), st.sampled_from([10**10, 2**40])), max_size=3).map(json.dumps),
    "--space.operations": st.lists(st.sampled_from(["skip", "conv3x3", "zero", "conv9x9", "", "avgpool"]), max_size=3).map(json.dumps),
    "--model.macro.timesteps": st.one_of(st.integers(-2, 6), st.sampled_from([10_001, 10**10])),
    "--model.neuron.threshold": numbers,
    "--strategy": st.sampled_from(["spikenas", "random", "evolution", "annealing", ""]),
}


@BUDGETS
def test_search_settings_succeed_or_fail_in_one_line(budget):
    @fuzz(budget, ci=4)
    @given(st.dictionaries(st.sampled_from(sorted(OVERRIDES)), st.none(), max_size=4).flatmap(
        lambda keys: st.fixed_dictionaries({k: OVERRIDES[k] for k in keys})))
    def check(overrides):
        extra = [item for key, value in overrides.items() for item in (key, str(value))]
        with sandbox() as box:
            outcome(search_args(box.logs, *extra))
            box.confined()
            for run in box.new_runs():  # none when refused; a whole result set when it ran
                assert {p.name for p in run.iterdir()} == RESULTS, sorted(p.name for p in run.iterdir())

    check()


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


@BUDGETS
def test_genotypes_profile_or_fail_in_one_line(budget):
    @fuzz(budget, ci=6)
    @given(genotypes)
    def check(genotype):
        with sandbox() as box:
            path = box.base / "final.yaml"
            path.write_text(yaml.safe_dump({"model": {"genotype": genotype, "macro": {"channels": 4, "timesteps": 2}},
                                            "data": {"class_path": "spikenas.data.Synthetic",
                                                     "init_args": {"num_classes": 3, "input_shape": [1, 8, 8]}}}))
            box.retake()
            outcome(["profile", "--config", str(path)])
            box.confined()

    check()


# --- whole configs ----------------------------------------------------------------------------

junk = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-3, 64), st.sampled_from([10**30, -(2**63), 2**64]),
                              st.floats(allow_nan=True, allow_infinity=True), texts,
                              st.sampled_from(["256KiB", "inf", "nan", "conv3x3", "{}", "[]", "!!python/name:os.system",
                                               "../outside", "/tmp"])),
                    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
                    max_leaves=6)
FIT_CONFIG = {"model": {"genotype": {"cells": [{"nodes": 4, "edges": [["conv3x3", 0, 1], ["skip", 0, 3], ["conv1x1", 1, 3]]}]},
                        "macro": {"timesteps": 2, "channels": 4, "head_pool": 4, "head_hidden": 8, "votes": 2, "dropout": 0.1},
                        "neuron": {"threshold": 1.0}, "seed": 0},
              "data": {"class_path": "spikenas.data.Synthetic",
                       "init_args": {"num_classes": 3, "input_shape": [1, 8, 8], "train_size": 32, "test_size": 16,
                                     "batch_size": 16}},
              "trainer": {"accelerator": "cpu", "max_epochs": 1}}
SEARCH = yaml.safe_load(Path(SEARCH_CONFIG).read_text())
MUTABLE = {  # where a generated config may differ: every setting but where outputs go (the command line sets that)
    "fit": ["model.genotype", "model.macro.timesteps", "model.macro.channels", "model.macro.head_pool", "model.macro.votes",
            "model.macro.dropout", "model.neuron.threshold", "model.neuron", "model.seed", "model.optimizer",
            "data.init_args.num_classes", "data.init_args.input_shape", "data.init_args.batch_size", "data.init_args",
            "data.class_path", "trainer.accelerator", "trainer.precision", "trainer.gradient_clip_val", "seed_everything",
            "colour", "model.colour"],
    "search": ["budget", "strategy", "space", "space.cells", "space.channels", "space.head_hidden", "sweeps", "candidates",
               "score", "score_batch_size", "search_seed", "model.macro.timesteps", "model.macro", "model.neuron",
               "data.init_args.num_classes", "data.init_args.input_shape", "data.init_args", "cost_model", "colour"],
}
FIT_FIXED = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
             "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def mutate(config: dict, changes: dict) -> dict:
    """``config`` with each dotted key of ``changes`` set (None: the key deleted)."""
    config = json.loads(json.dumps(config))
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = config
        for name in parents:
            node = node.setdefault(name, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            if value is None:
                node.pop(last, None)
            else:
                node[last] = value[0]
    return config


def config_changes(command: str):
    return st.dictionaries(st.sampled_from(MUTABLE[command]), st.one_of(st.none(), junk.map(lambda v: [v])),
                           min_size=1, max_size=3)


@BUDGETS
def test_generated_configs_run_or_fail_in_one_line(budget, trained_once):
    @fuzz(budget, ci=4)
    @given(st.sampled_from(["fit", "search", "export", "validate"]).flatmap(
        lambda c: st.tuples(st.just(c), config_changes("search" if c == "search" else "fit"), st.booleans())))
    def check(drawn):
        command, changes, raw = drawn
        with sandbox() as box:
            config = mutate(SEARCH if command == "search" else FIT_CONFIG, changes)
            path = box.base / "config.yaml"
            text = yaml.safe_dump(config)
            path.write_text(text if not raw else text.replace(":", ": {", 1))  # sometimes not YAML at all
            box.retake()
            where = ["--trainer.default_root_dir", str(box.logs)]
            if command == "search":
                args = ["search", "--config", str(path), *where, "--trainer.logger.init_args.save_dir", str(box.logs)]
            elif command == "fit":
                args = ["fit", "--config", str(path), *where, *FIT_FIXED]
            elif command == "export":
                args = ["export", "--config", str(path), "--ckpt_path", trained_once, "--output", str(box.root / "version_0" / "net.nir"), "--target", "nir"]
            else:
                args = ["validate", "--config", str(path), *where, "--ckpt_path", trained_once, *FIT_FIXED[4:]]
            outcome(args)
            box.confined()

    check()


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory) -> str:
    """A checkpoint of FIT_CONFIG's network, after two training steps."""
    directory = tmp_path_factory.mktemp("trained")
    path = directory / "fit.yaml"
    path.write_text(yaml.safe_dump(FIT_CONFIG))
    assert outcome(["fit", "--config", str(path), "--trainer.default_root_dir", str(directory), *FIT_FIXED]) is None
    return str(next(directory.rglob("last.ckpt")))


# --- resume states ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished search's logs root (its state and version_0) to copy into each example's sandbox."""
    directory = tmp_path_factory.mktemp("searched")
    assert outcome(search_args(directory)) is None
    return directory / "lightning_logs"


payloads = st.one_of(st.binary(max_size=300), texts.map(str.encode),
                     st.recursive(st.one_of(st.none(), st.booleans(), numbers, texts),
                                  lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(st.sampled_from(["meta", "records", "run_dir",
                                                                                           "complete", "checksum", "score"]),
                                                                          inner, max_size=4)),
                                  max_leaves=12).map(lambda v: json.dumps(v).encode()))


@BUDGETS
def test_a_damaged_search_state_never_breaks_or_redirects_a_rerun(budget, searched):
    @fuzz(budget, ci=3)
    @given(payloads)
    def check(payload):
        with sandbox() as box:
            copy_tree(searched, box.root)
            state = next((box.root / ".search_state").glob("*.json"))
            state.write_bytes(payload)
            box.retake()
            assert outcome(search_args(box.logs)) is None  # set aside (or resumed): the search completes
            box.confined(own=("logs/lightning_logs/version_0",))

    check()


def run_dirs(box) -> st.SearchStrategy[str]:
    """What a forged state's run_dir may say: its own run, another run, hidden and outside
    directories, the logs root itself, a symlink out, relative and dotted paths."""
    root = box.root
    return st.sampled_from([str(root / "version_0"), str(root / "version_0") + "/", str(root / box.OTHER_RUN),
                            str(root / "version_5"), str(root / ".hidden"), str(root / ".search_state"),
                            str(root / ".claims"), str(root / ".analyze_state"), str(root), str(box.logs), str(box.outside),
                            str(root / "version_0" / ".." / box.OTHER_RUN), str(root / "version_99"), "version_0",
                            f"../logs/lightning_logs/{box.OTHER_RUN}", "/", "", str(box.base / "cwd")])


scores = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([float("nan"), float("inf"), -float("inf")]))


@BUDGETS
def test_a_search_state_with_a_valid_checksum_resumes_only_into_its_own_run(budget, searched):
    """A state rewritten with a checksum that matches (as the code computes it), its run_dir
    and scores chosen by the fuzzer: the rerun completes or refuses in one line, and writes
    nothing but its own run directory: never another run's, a hidden one, or outside."""
    @fuzz(budget, ci=4)
    @given(st.data())
    def check(data):
        with sandbox() as box:
            copy_tree(searched, box.root)
            state = next((box.root / ".search_state").glob("*.json"))
            saved = json.loads(state.read_text())
            meta = {**saved["meta"], "run_dir": data.draw(run_dirs(box), "run_dir"),
                    "complete": data.draw(st.booleans(), "complete")}
            records = saved["records"]
            changed = data.draw(st.dictionaries(st.integers(0, len(records) - 1), scores, max_size=8), "scores")
            records = [{**r, "score": changed.get(i, r["score"])} for i, r in enumerate(records)]
            records = records[:data.draw(st.integers(0, len(records)), "kept")]
            state.write_text(json.dumps({"meta": meta, "records": records, "checksum": _checksum(meta, records)}))
            box.retake()
            outcome(search_args(box.logs))
            box.confined(own=("logs/lightning_logs/version_0",))

    check()


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    directory = tmp_path_factory.mktemp("analyzed")
    assert outcome(analyze_args(directory)) is None
    return directory / "lightning_logs"


def analyze_args(directory) -> list[str]:
    return ["analyze", "--config", ANALYZE_CONFIG, "--studies.run", "[correlation]", "--studies.random_networks", "3",
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(directory),
            "--trainer.logger.init_args.save_dir", str(directory)]


@BUDGETS
def test_an_analysis_state_resumes_only_into_its_own_run(budget, analyzed):
    @fuzz(budget, ci=2)
    @given(st.data())
    def check(data):
        with sandbox() as box:
            copy_tree(analyzed, box.root)
            state = next((box.root / ".analyze_state").glob("*.json"))
            forged = {"run_dir": data.draw(run_dirs(box), "run_dir"), "complete": data.draw(st.booleans(), "complete")}
            if data.draw(st.booleans(), "sealed with the user's key"):  # then only the directory's claim refuses it
                forged["seal"] = seal(forged)
            state.write_text(json.dumps(forged))
            box.retake()
            outcome(analyze_args(box.logs))
            box.confined(own=("logs/lightning_logs/version_0",))

    check()


# --- checkpoints of any content -----------------------------------------------------------------


@BUDGETS
def test_a_checkpoint_of_any_content_is_refused_in_one_line(budget, searched):
    final = str(next(searched.glob("version_*/final.yaml")))

    @fuzz(budget, ci=6)
    @given(st.one_of(st.binary(max_size=2000), st.sampled_from(["dict", "list", "nested", "payload"])))
    def check(content):
        with sandbox() as box:
            ckpt = box.base / "x.ckpt"
            if isinstance(content, bytes):
                ckpt.write_bytes(content)
            elif content == "payload":
                ckpt.write_bytes(pickle.dumps({"state_dict": {}, "x": os.getpid}))  # a global: refused
            else:
                torch.save({"dict": {"state_dict": {"w": torch.ones(2)}}, "list": [1, 2],
                            "nested": {"state_dict": {"a": {"b": 1}}, "hyper_parameters": {"genotype": "zz"}}}[content], ckpt)
            box.retake()
            message = outcome(["test", "--config", final, "--ckpt_path", str(ckpt), "--trainer.enable_progress_bar", "false",
                               "--trainer.logger", "false", "--trainer.default_root_dir", str(box.logs)])
            assert message is not None and "checkpoint" in message
            box.confined()

    check()

