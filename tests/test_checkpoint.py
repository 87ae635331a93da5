"""Checkpoints never run code, are read once, hold the config's network, and are written atomically."""

from __future__ import annotations

import contextlib
import errno
import functools
import http.server
import os
import pickle
from pathlib import Path

import pytest
import torch
import yaml
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.plugins.io import AsyncCheckpointIO

from spikenas.train.checkpoint import (CheckpointWarning, check_holds_network, LastEveryEpochCheckpoint, SafeCheckpointIO, read_checkpoint,
                                 save_checkpoint_file)
from spikenas.app.cli import main
from spikenas.base.errors import SpikenasError
from spikenas.app.trainer import Trainer

from test_checkpoint_download import serving
from test_cli_fit import GENOTYPE, QUIET, SYNTHETIC, run_dir, write_config

COMMANDS = ("fit", "validate", "test", "predict", "export")


class Payload:
    """Unpickling this creates ``path``: proof that a file ran code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@contextlib.contextmanager
def serve(directory: Path):
    """An HTTP server on localhost for ``directory``; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None
    with serving(handler) as url:
        yield url


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A config and a checkpoint of its network after two training steps."""
    tmp_path = tmp_path_factory.mktemp("trained")
    cfg = write_config(tmp_path, SYNTHETIC)
    main(["fit", "--config", cfg, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
          "--trainer.limit_val_batches", "1", *QUIET])
    return cfg, run_dir(tmp_path) / "checkpoints" / "last.ckpt"


def command(name: str, cfg: str, ckpt: str, tmp_path: Path) -> list[str]:
    if name == "export":
        return ["export", "--config", cfg, "--ckpt_path", ckpt, "--output", str(tmp_path / "net.nir"), "--target", "nir"]
    extra = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1"]
    return [name, "--config", cfg, "--ckpt_path", ckpt, *QUIET, *(extra if name == "fit" else [])]


def one_line_error(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    message = str(exit_info.value.code)
    assert message.startswith("spikenas: error: ") and "\n" not in message, message
    assert "Traceback" not in capsys.readouterr().err
    return message


@pytest.mark.parametrize("where", ["local", "symlink", "http"])
@pytest.mark.parametrize("name", COMMANDS)
def test_a_hostile_checkpoint_is_refused_without_running_its_code(name, where, trained, tmp_path, capsys, monkeypatch):
    cfg, _ = trained
    marker = tmp_path / "ran"
    legacy = name in ("fit", "export")  # both pickle formats, spread over the commands
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "epoch": 0, "x": Payload(marker)}, evil, _use_new_zipfile_serialization=not legacy)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with contextlib.ExitStack() as stack:
        if where == "symlink":
            (tmp_path / "link.ckpt").symlink_to(evil)
            location = str(tmp_path / "link.ckpt")
        elif where == "http":
            location = stack.enter_context(serve(tmp_path)) + "/evil.ckpt"
        else:
            location = str(evil)
        message = one_line_error(command(name, cfg, location, tmp_path), capsys)
    assert "refused: it asks to run posix.mkdir" in message
    assert not marker.exists()
    assert not (tmp_path / "torch_home").exists()  # nothing cached in torch hub


def test_a_checkpoint_over_http_is_downloaded_then_used(trained, tmp_path, capsys):
    cfg, last = trained
    with serve(last.parent) as url:
        main(["test", "--config", cfg, "--ckpt_path", f"{url}/{last.name}", *QUIET])
    assert "test/acc" in capsys.readouterr().out
    with serve(last.parent) as url:
        message = one_line_error(["test", "--config", cfg, "--ckpt_path", f"{url}/missing.ckpt", *QUIET], capsys)
    assert "HTTP 404" in message


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, os.urandom(4096), "truncated"])
def test_a_damaged_checkpoint_is_one_line(content, trained, tmp_path, capsys):
    cfg, last = trained
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(last.read_bytes()[:5000] if content == "truncated" else content)
    for name in ("test", "export"):
        message = one_line_error(command(name, cfg, str(bad), tmp_path), capsys)
        assert repr(str(bad)) in message and ("damaged" in message or "truncated" in message)


@pytest.mark.parametrize("location", ["missing.ckpt", "", "s3://bucket/x.ckpt", "."])
def test_a_missing_or_unsupported_location_is_one_line(location, trained, tmp_path, capsys):
    cfg, _ = trained
    with pytest.raises(SpikenasError):
        read_checkpoint(location)
    if location:
        one_line_error(command("test", cfg, location, tmp_path), capsys)


def test_a_checkpoint_of_another_network_is_refused_naming_both(trained, tmp_path, capsys):
    _, last = trained
    other = {"cells": [{"nodes": 4, "edges": [["conv1x1", 0, 1], ["skip", 0, 3], ["conv1x1", 1, 3]]}]}
    for genotype, model in ((other, {}), (GENOTYPE, {"quantization": {"weight_bits": 8}, "cost_options": {"weight_bits": 8}})):
        cfg = write_config(tmp_path, SYNTHETIC, genotype=genotype, **model)
        for name in ("fit", "test", "export"):
            message = one_line_error(command(name, cfg, str(last), tmp_path), capsys)
            assert "holds another network than the config" in message
            assert "checkpoint genotype" in message and "config genotype" in message
            assert ("genotype differ" in message) == (genotype is other)
            assert ("8-bit weights" in message) == (genotype is GENOTYPE)
    assert not (tmp_path / "net.nir").exists()


def test_a_checkpoint_from_before_neuron_models_holds_a_lif_network(trained):
    _, last = trained
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    hparams = {**checkpoint["hyper_parameters"], "neuron": dict(checkpoint["hyper_parameters"]["neuron"])}
    assert hparams["neuron"].pop("model") == "lif"
    check_holds_network({**checkpoint, "hyper_parameters": hparams}, checkpoint["hyper_parameters"], checkpoint["state_dict"])
    sinabs = {**hparams, "neuron": {**hparams["neuron"], "model": "sinabs_lif", "reset": "soft"}}
    with pytest.raises(SpikenasError, match="holds another network than the config \\(neuron differ\\)"):
        check_holds_network({**checkpoint, "hyper_parameters": hparams}, sinabs, checkpoint["state_dict"])


def test_the_config_decides_the_network_not_the_checkpoint(trained, tmp_path):
    """Lightning's CLI would replace the config's model by the checkpoint's hyper-parameters;
    a changed dropout (not part of the weights) is the config's after loading."""
    cfg, last = trained
    config = yaml.safe_load(Path(cfg).read_text())
    config["model"]["macro"]["dropout"] = 0.3
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    main(["validate", "--config", str(changed), "--ckpt_path", str(last), *QUIET,
          "--trainer.default_root_dir", str(tmp_path / "v")])
    hparams = yaml.safe_load(next((tmp_path / "v").rglob("hparams.yaml")).read_text())
    assert hparams["macro"]["dropout"] == 0.3


def test_a_symlinked_checkpoint_is_read_once(trained, tmp_path, monkeypatch):
    """The bytes checked are the bytes used: the CLI's read is handed to the trainer."""
    cfg, last = trained
    opened = []
    real_open = open

    def counting_open(file, *args, **kwargs):
        if str(file).endswith("link.ckpt"):
            opened.append(file)
        return real_open(file, *args, **kwargs)

    (tmp_path / "link.ckpt").symlink_to(last)
    monkeypatch.setattr("builtins.open", counting_open)
    main(["validate", "--config", cfg, "--ckpt_path", str(tmp_path / "link.ckpt"), *QUIET,
          "--trainer.default_root_dir", str(tmp_path / "v")])
    assert len(opened) == 1


def test_saving_a_checkpoint_on_a_full_disk_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    save_checkpoint_file({"state_dict": {"w": torch.ones(3)}}, path)
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("spikenas.train.checkpoint.os.fsync", full)
    with pytest.raises(SpikenasError, match="No space left on device.*previous checkpoint, if any, is intact"):
        SafeCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(1000)}}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_weights_only_false_is_never_used():
    with pytest.raises(SpikenasError, match="weights_only=False"):
        SafeCheckpointIO().load_checkpoint("x.ckpt", weights_only=False)


def test_a_resumed_callback_state_cannot_make_fit_delete_outside_its_directory(tmp_path, capsys):
    """Issue 31, S2: a ``last.ckpt`` whose ``ModelCheckpoint`` state points (through ``..``) at
    files and directories elsewhere resumes with those paths dropped, one line each, and nothing
    outside the run's checkpoint directory is removed."""
    cfg = write_config(tmp_path, SYNTHETIC)
    checkpoints = tmp_path / "a" / "b" / "checkpoints"
    fit = ["fit", "--config", cfg, "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
           "--checkpoint.dirpath", str(checkpoints), *QUIET]
    main([*fit, "--trainer.max_epochs", "1"])
    victim, victim_dir = tmp_path / "victim_dir" / "x.ckpt", tmp_path / "victim_dir2"
    victim.parent.mkdir()
    victim.write_bytes(b"keep")
    victim_dir.mkdir()
    (victim_dir / "inside").write_bytes(b"keep")
    checkpoint = torch.load(checkpoints / "last.ckpt", weights_only=True)
    [key] = [k for k in checkpoint["callbacks"] if k.startswith("ModelCheckpoint{")]
    state = checkpoint["callbacks"][key]
    dirpath = state["dirpath"]
    hostile_file, hostile_dir = f"{dirpath}/../../../victim_dir/x.ckpt", f"{dirpath}/../../../victim_dir2"
    state.update(best_k_models={hostile_file: torch.tensor(0.9)}, kth_best_model_path=hostile_file,
                 last_model_path=hostile_dir)
    torch.save(checkpoint, tmp_path / "hostile.ckpt")
    capsys.readouterr()
    main([*fit, "--trainer.max_epochs", "2", "--ckpt_path", str(tmp_path / "hostile.ckpt")])
    assert victim.read_bytes() == b"keep" and (victim_dir / "inside").read_bytes() == b"keep"
    lines = [line for line in capsys.readouterr().err.splitlines() if "victim_dir" in line]
    assert lines == [f"spikenas: left {path!r} out of the resumed checkpoint state: it is not a checkpoint file in "
                     f"{dirpath}" for path in (hostile_file, hostile_dir)]
    # the resume went on; its last path dropped, Lightning does not take last.ckpt for its own and writes beside it
    assert torch.load(checkpoints / "last-v1.ckpt", weights_only=True)["epoch"] == 1


def test_removal_is_confined_to_regular_files_in_directories_checkpoints_were_saved_into(tmp_path):
    io = SafeCheckpointIO()
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    elsewhere.mkdir()
    io.save_checkpoint({"state_dict": {}}, run / "old.ckpt")
    (elsewhere / "x.ckpt").write_bytes(b"keep")
    (run / "sub").mkdir()
    (run / "sub" / "inside").write_bytes(b"keep")
    (run / "link.ckpt").symlink_to(elsewhere / "x.ckpt")
    for refused in (run / ".." / "elsewhere" / "x.ckpt", elsewhere / "x.ckpt", run / "sub", run / "link.ckpt",
                    run / "sub" / ".."):
        with pytest.warns(CheckpointWarning) as caught:
            io.remove_checkpoint(str(refused))
        assert [str(refused) in str(w.message) and "\n" not in str(w.message) for w in caught] == [True]
    assert (elsewhere / "x.ckpt").read_bytes() == b"keep" and (run / "sub" / "inside").is_file()
    assert (run / "link.ckpt").is_symlink()
    io.remove_checkpoint(str(run / "missing.ckpt"))
    io.remove_checkpoint(str(run / "old.ckpt"))
    assert not (run / "old.ckpt").exists()


class PickleCheckpointIO(TorchCheckpointIO):
    """A ``CheckpointIO`` a config could name: it would read checkpoints with pickle."""

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return torch.load(path, weights_only=False)


def test_a_checkpoint_io_other_than_safe_checkpoint_io_is_refused(trained, tmp_path, capsys):
    cfg, last = trained
    message = one_line_error([*command("fit", cfg, str(last), tmp_path), "--trainer.plugins",
                              f"{__name__}.PickleCheckpointIO"], capsys)
    assert "checkpoint IO test_checkpoint.PickleCheckpointIO refused" in message
    with pytest.raises(SpikenasError, match="AsyncCheckpointIO refused"):
        Trainer(plugins=[AsyncCheckpointIO()], logger=False)
    assert isinstance(Trainer(plugins=[TorchCheckpointIO()], logger=False).strategy.checkpoint_io, SafeCheckpointIO)


def test_ckpt_path_last_reads_the_file_lightning_finds_through_safe_checkpoint_io(trained, tmp_path, capsys):
    cfg, _ = trained
    marker, checkpoints = tmp_path / "ran", tmp_path / "checkpoints"
    checkpoints.mkdir()
    torch.save({"state_dict": {}, "epoch": 0, "x": Payload(marker)}, checkpoints / "last.ckpt")
    message = one_line_error([*command("fit", cfg, "last", tmp_path), "--checkpoint.dirpath", str(checkpoints)], capsys)
    assert "refused: it asks to run posix.mkdir" in message and str(checkpoints / "last.ckpt") in message
    assert not marker.exists()


@pytest.mark.parametrize("location", ["registry", "registry:my-model:v2", "REGISTRY:x"])
def test_ckpt_path_registry_is_refused(location, trained, tmp_path, capsys):
    cfg, _ = trained
    message = one_line_error(command("test", cfg, location, tmp_path), capsys)
    assert f"--ckpt_path {location!r}: Lightning's model registry is not supported" in message


def test_a_raw_pickle_is_refused_in_one_line_without_torch_warnings(trained, tmp_path, capsys):
    cfg, _ = trained
    marker, raw = tmp_path / "ran", tmp_path / "raw.ckpt"
    raw.write_bytes(pickle.dumps({"state_dict": {}, "x": Payload(marker)}))
    message = one_line_error(command("test", cfg, str(raw), tmp_path), capsys)
    assert f"checkpoint {str(raw)!r} is not a PyTorch checkpoint" in message and not marker.exists()
    with pytest.raises(SpikenasError):
        read_checkpoint(raw)
    assert "UserWarning" not in capsys.readouterr().err


def test_a_callback_state_is_kept_as_this_directory_s_own_names_and_odd_paths_are_dropped(tmp_path):
    """A confined path is kept as ``<dirpath>/<name>`` (so Lightning never takes its own file
    for another and removes it); a NUL, a non-string, a directory are dropped, one line each."""
    callback = LastEveryEpochCheckpoint(dirpath=tmp_path, monitor="val/acc", mode="max")
    (tmp_path / "best.ckpt").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    state = {**callback.state_dict(), "best_model_path": "a\0b", "best_model_score": torch.tensor(1.0),
             "best_k_models": {str(tmp_path / "sub" / ".." / "best.ckpt"): torch.tensor(0.5), 3: torch.tensor(0.1)},
             "last_model_path": str(tmp_path / "sub")}
    with pytest.warns(CheckpointWarning) as caught:
        callback.load_state_dict(state)
    assert callback.best_k_models == {f"{callback.dirpath}/best.ckpt": torch.tensor(0.5)}
    assert (callback.best_model_path, callback.best_model_score, callback.last_model_path) == ("", None, "")
    assert sorted(str(w.message).split("'")[1] for w in caught) == sorted(["a\\x00b", "3", str(tmp_path / "sub")])


@pytest.mark.parametrize("content", [b"r", b"r\x00", b"\x80\x02r"])
def test_a_file_torch_reads_as_a_cut_legacy_header_is_one_line(tmp_path, content):
    """Found by the fuzz suite: the one byte ``r`` made torch.load raise struct.error."""
    path = tmp_path / "x.ckpt"
    path.write_bytes(content)
    with pytest.raises(SpikenasError) as error:
        read_checkpoint(path)
    assert "\n" not in str(error.value)
