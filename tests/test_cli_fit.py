"""``spikenas fit/validate/test/predict`` driven through the real CLI on tiny configs."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import yaml

from spikenas.app.cli import main

from datasets import FMNIST_SYSTEM_DIR, write_cifar

ROOT = Path(__file__).resolve().parents[1]
GENOTYPE = {"cells": [{"nodes": 4, "edges": [["conv3x3", 0, 1], ["skip", 0, 3], ["conv1x1", 1, 3]]}]}
MACRO = {"timesteps": 2, "channels": 4, "head_pool": 4, "head_hidden": 8, "votes": 2, "dropout": 0.1}
SYNTHETIC = {"class_path": "spikenas.data.Synthetic",
             "init_args": {"num_classes": 3, "input_shape": [1, 8, 8], "train_size": 64,
                           "test_size": 16, "batch_size": 16}}
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def write_config(tmp_path: Path, data: dict, genotype: dict | None = GENOTYPE, **model) -> str:
    config = {"model": {"genotype": genotype, "macro": dict(MACRO), "seed": 0, **model}, "data": data,
              "trainer": {"default_root_dir": str(tmp_path / "runs"), "accelerator": "cpu"}}
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def run_dir(tmp_path: Path, version: int = 0) -> Path:
    return tmp_path / "runs" / "lightning_logs" / f"version_{version}"


def test_fit_links_data_into_macro_then_resume_validate_test_predict(tmp_path):
    cfg = write_config(tmp_path, SYNTHETIC)
    short = ["--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", *QUIET]
    main(["fit", "--config", cfg, "--trainer.max_epochs", "1", *short])
    run = run_dir(tmp_path)
    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    assert hparams["macro"]["num_classes"] == 3 and hparams["macro"]["input_shape"] == [1, 8, 8]
    assert hparams["genotype"] == GENOTYPE
    last = run / "checkpoints" / "last.ckpt"
    assert last.is_file() and list((run / "checkpoints").glob("best-epoch000-acc*.ckpt"))
    # resume: training continues from epoch 1
    main(["fit", "--config", cfg, "--trainer.max_epochs", "2", "--ckpt_path", str(last), *short])
    import torch

    assert torch.load(run_dir(tmp_path, 1) / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1
    main(["fit", "--config", cfg, "--trainer.max_epochs", "1", "--trainer.enable_checkpointing", "false", *short])
    assert (run_dir(tmp_path, 2) / "hparams.yaml").is_file() and not (run_dir(tmp_path, 2) / "checkpoints").exists()
    for sub in ("validate", "test", "predict"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            main([sub, "--config", cfg, "--ckpt_path", str(last), *QUIET])
        # a checkpoint of another run loads without Lightning's "dirpath has changed" warning,
        # nor its advice to add the checkpoint callback back
        unwanted = ("dirpath has changed", "callbacks used to create the checkpoint")
        assert not [str(w.message) for w in caught if any(u in str(w.message) for u in unwanted)], sub


class _Plateau(pl.Callback):
    """Logs a metric that never improves: only the first epoch is a best checkpoint."""

    def on_validation_epoch_end(self, trainer, pl_module):
        pl_module.log("plateau", 1.0)


def test_last_checkpoint_follows_every_epoch_when_the_score_stops_improving(tmp_path):
    """A resume goes on from the epoch the run stopped in: ``last.ckpt`` is written after every
    epoch, also those that do not improve the monitored score (Lightning alone keeps it at the
    last improving one)."""
    import torch

    cfg = write_config(tmp_path, SYNTHETIC)
    checkpoints = tmp_path / "checkpoints"  # one directory for both runs, as a pinned logger version gives

    def fit(epochs: int, *resume: str) -> None:
        main(["fit", "--config", cfg, "--trainer.max_epochs", str(epochs), "--trainer.limit_train_batches", "1",
              "--trainer.limit_val_batches", "1", "--checkpoint.monitor", "plateau", "--checkpoint.dirpath", str(checkpoints),
              "--trainer.callbacks+", f"{__name__}._Plateau", *resume, *QUIET])

    fit(3)
    best = [next(checkpoints.glob("best-epoch000-*.ckpt")).name]
    assert [p.name for p in checkpoints.glob("best-*.ckpt")] == best
    last = torch.load(checkpoints / "last.ckpt", weights_only=False)
    assert last["epoch"] == 2
    # stored as Lightning's ModelCheckpoint stores it: a checkpoint of either class resumes with
    # its best score and paths (else the resume's first epoch would be a new best)
    assert [k for k in last["callbacks"] if "plateau" in k][0].startswith("ModelCheckpoint{")
    fit(4, "--ckpt_path", str(checkpoints / "last.ckpt"))
    assert [p.name for p in checkpoints.glob("best-*.ckpt")] == best and not list(checkpoints.glob("last-v*.ckpt"))
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["epoch"] == 3


@pytest.mark.parametrize("classes", [10, 100])
def test_fit_cifar_fake_copy(tmp_path, classes):
    write_cifar(tmp_path / "data", classes, per_batch=8, test=8)
    data = {"class_path": f"spikenas.data.CIFAR{classes}",
            "init_args": {"root": str(tmp_path / "data"), "verify": False, "batch_size": 4}}
    main(["fit", "--config", write_config(tmp_path, data), "--trainer.fast_dev_run", "1", *QUIET])


class _Touch:
    """Pickles as ``os.system("touch <marker>")``: a hostile dataset file's payload."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("verify", [False, True])
def test_fit_never_runs_code_from_a_cifar_batch(tmp_path, verify):
    """A CIFAR folder whose batch hides a ``__reduce__`` payload: ``spikenas fit`` stops in one
    line naming the file, with checksums off or on, and nothing ran."""
    write_cifar(tmp_path / "data", 10, per_batch=8, test=8)
    marker = tmp_path / "ran"
    batch = tmp_path / "data" / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({"data": _Touch(marker), "labels": [0]}, protocol=4))
    data = {"class_path": "spikenas.data.CIFAR10",
            "init_args": {"root": str(tmp_path / "data"), "verify": verify, "batch_size": 4}}
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", write_config(tmp_path, data), "--trainer.fast_dev_run", "1", *QUIET])
    message = str(info.value.code)
    assert not marker.exists(), "a dataset file ran code"
    assert message.startswith(f"spikenas: error: CIFAR10 file {batch} ") and "\n" not in message
    assert ("is not the published file" if verify else "refused: it asks for posix.system") in message


@pytest.mark.skipif(not (FMNIST_SYSTEM_DIR / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fit_fashion_mnist_debian_copy(tmp_path):
    data = {"class_path": "spikenas.data.FashionMNIST",
            "init_args": {"root": str(tmp_path / "data"), "batch_size": 8}}
    main(["fit", "--config", write_config(tmp_path, data), "--trainer.fast_dev_run", "1", *QUIET])


def test_fit_configs_parse():
    """The shipped fit configs are complete: they parse and name a genotype and a datamodule."""
    for name in ("fit_fmnist.yaml", "fit_cifar10.yaml"):
        with pytest.raises(SystemExit) as info:
            main(["fit", "--config", str(ROOT / "configs" / name), "--print_config"])
        assert info.value.code in (0, None)


def test_missing_data_is_one_line_error(tmp_path, capsys):
    data = {"class_path": "spikenas.data.FashionMNIST",
            "init_args": {"root": str(tmp_path / "empty"), "system_dir": str(tmp_path / "empty"),
                          "download": False}}
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", write_config(tmp_path, data), "--trainer.fast_dev_run", "1", *QUIET])
    message = str(info.value.code)
    assert message.startswith("spikenas: error: Fashion-MNIST not found in") and "\n" not in message
    assert "apt-get install -y dataset-fashion-mnist" in message


def test_fit_without_genotype_is_one_line_error(tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", write_config(tmp_path, SYNTHETIC, genotype=None),
              "--trainer.fast_dev_run", "1", *QUIET])
    message = str(info.value.code)
    assert "genotype" in message and "\n" not in message


@pytest.mark.slow
def test_fit_ddp_two_cpu_processes(tmp_path):
    cfg = write_config(tmp_path, SYNTHETIC)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "spikenas", "fit", "--config", cfg, "--trainer.max_epochs", "1",
         "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu", *QUIET],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir(tmp_path) / "checkpoints" / "last.ckpt").is_file()


class _CtrlC(pl.Callback):
    """Presses Ctrl-C after the first training step."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        raise KeyboardInterrupt


def test_ctrl_c_during_fit_says_how_to_resume_with_status_130(tmp_path, capsys):
    cfg = write_config(tmp_path, SYNTHETIC)
    with pytest.raises(SystemExit) as interrupted:
        main(["fit", "--config", cfg, "--trainer.max_epochs", "1", "--trainer.callbacks+", f"{__name__}._CtrlC", *QUIET])
    assert interrupted.value.code == 130
    err = capsys.readouterr().err
    assert "spikenas: fit interrupted; the same command resumes it (from its last.ckpt" in err and "Traceback" not in err


@pytest.mark.parametrize("args", [["--config", "{bad}"], ["-c", "{bad}"], ["--trainer", "{bad}"], ["--config", "/dev/zero"]])
def test_an_unreadable_config_file_is_one_line_however_it_is_passed(tmp_path, args):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe\x00 not text")
    argv = [str(bad) if a == "{bad}" else a for a in args]
    with pytest.raises(SystemExit) as error:
        main(["fit", *argv])
    line = str(error.value.code)
    assert line.startswith("spikenas: error: config ") and "\n" not in line
    assert ("not UTF-8 text" in line) if "{bad}" in args else ("larger than 16 MiB" in line)


@pytest.mark.parametrize("args, message", [
    (["--data.class_path", "this.Zen"], "--data.class_path 'this.Zen' is in Python's standard library (this)"),
    (["--data", "antigravity.Fly"], "--data 'antigravity.Fly' is in Python's standard library"),
    (["--model.optimizer", "os.system"], "--model.optimizer 'os.system' is in Python's standard library"),
    (["--model.macro.timesteps", "x"], "model.macro.timesteps: Expected a <class 'int'>. Got value: x (spikenas fit --help"),
    (["--nonsense", "1"], "unrecognized arguments: --nonsense 1"),
])
def test_class_paths_into_the_standard_library_and_bad_values_are_one_line_before_any_import(tmp_path, capsys, args, message):
    import sys as system

    cfg = write_config(tmp_path, SYNTHETIC)
    before = set(system.modules)
    with pytest.raises(SystemExit) as error:
        main(["fit", "--config", cfg, *args])
    line = str(error.value.code)
    assert line.startswith("spikenas: error: ") and message in line and "\n" not in line, line
    assert not {"this", "antigravity"} & (set(system.modules) - before)  # nothing imported, nothing printed
    assert "Zen of Python" not in capsys.readouterr().out


def test_a_config_file_with_a_standard_library_class_path_is_refused(tmp_path):
    config = yaml.safe_load(open(write_config(tmp_path, SYNTHETIC)))
    config["data"]["class_path"] = "this.Data"
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as error:
        main(["fit", "--config", str(path)])
    assert f"class_path in {path} 'this.Data' is in Python's standard library" in str(error.value.code)


def test_ctrl_c_while_the_libraries_load_is_one_line_with_status_130(monkeypatch, capsys):
    import builtins

    from spikenas.app import console

    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "spikenas.app.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        console.main()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "spikenas: interrupted while starting; nothing ran\n"


FIXED_VERSION = ["--trainer.logger.class_path", "lightning.pytorch.loggers.CSVLogger",
                 "--trainer.logger.init_args.version", "7"]


def _complete_fit_run(run: Path) -> bool:
    return all((run / name).is_file() for name in ("config.yaml", "hparams.yaml", "metrics.csv", "checkpoints/last.ckpt"))


def test_a_fit_asking_for_a_taken_version_gets_the_next_free_one_and_says_so(tmp_path, capsys):
    """Issue 31 L2/L3: a fit with a fixed version wrote into a folder another run (a fit, a
    search) already held: a new config.yaml, metrics.csv replaced, last-v1.ckpt beside the old."""
    from spikenas.base.rundir import claim_run_dir

    cfg = write_config(tmp_path, SYNTHETIC)
    short = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
             *FIXED_VERSION, "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"), *QUIET]
    main(["fit", "--config", cfg, *short])
    logs = tmp_path / "runs" / "lightning_logs"
    first = logs / "version_7"
    assert _complete_fit_run(first)
    before = {p: p.stat().st_mtime_ns for p in first.rglob("*")}
    capsys.readouterr()
    main(["fit", "--config", cfg, *short, "--seed_everything", "1"])
    assert f"{first} holds another run; this run writes to {logs / 'version_8'}" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*")} == before  # untouched
    assert _complete_fit_run(logs / "version_8")
    from types import SimpleNamespace

    searching = claim_run_dir(SimpleNamespace(logger=None), logs, "search:x")  # a search's claim, nothing written yet
    main(["fit", "--config", cfg, *short])
    assert not searching.exists() and _complete_fit_run(logs / f"version_{int(searching.name.split('_')[1]) + 1}")


@pytest.mark.slow
def test_two_fits_with_one_fixed_version_started_at_once_leave_two_complete_runs(tmp_path):
    """Issue 31 L1: both ended rc 0 in one version_7, metrics.csv holding both runs' rows mixed."""
    cfg = write_config(tmp_path, SYNTHETIC)
    cmd = [sys.executable, "-m", "spikenas", "fit", "--config", cfg, "--trainer.max_epochs", "2",
           *FIXED_VERSION, "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"), *QUIET]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    for process in runs:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
    logs = tmp_path / "runs" / "lightning_logs"
    assert sorted(p.name for p in logs.glob("version_*")) == ["version_7", "version_8"]
    rows = []
    for run in logs.glob("version_*"):
        assert _complete_fit_run(run)
        rows.append(len((run / "metrics.csv").read_text().splitlines()))
    assert rows[0] == rows[1]  # each run's own rows, not one file holding both runs' mixed


@pytest.mark.parametrize("change", [
    {"model": {"neuron": {"threshold": None}}},
    {"model": {"neuron": None}},
    {"model": {"macro": None}},
    {"data": {"init_args": None}},
    {"model": {"neuron": {"threshold": [{}]}}},
])
def test_a_setting_set_to_null_in_a_config_file_is_one_line(tmp_path, change):
    """Found by the fuzz suite: a null (or a list) where a number or a mapping belongs, in a
    config file, ended in a traceback from inside jsonargparse or a dataclass's check."""
    config = yaml.safe_load(Path(write_config(tmp_path, SYNTHETIC)).read_text())
    for section, values in change.items():
        if values is None or not isinstance(config[section], dict):
            config[section] = values
        else:
            for key, value in values.items():
                config[section][key] = value if not isinstance(value, dict) else {**(config[section].get(key) or {}), **value}
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as error:
        main(["fit", "--config", str(path), "--trainer.fast_dev_run", "1", *QUIET])
    line = str(error.value.code)
    assert line.startswith("spikenas: error: ") and "\n" not in line, line


def test_a_final_yaml_written_by_spikenas_0_1_still_trains(tmp_path):
    """Its scheduler is ``spikenas.lit.cosine``, the name before the classifier moved to
    spikenas.train.classifier: the file a user kept must train as it is."""
    config = yaml.safe_load(Path(write_config(tmp_path, SYNTHETIC)).read_text())
    config["model"]["scheduler"] = "spikenas.lit.cosine"
    path = tmp_path / "final.yaml"
    path.write_text(yaml.safe_dump(config))
    main(["fit", "--config", str(path), "--trainer.fast_dev_run", "1", *QUIET])
