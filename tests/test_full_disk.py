"""Fault injection: a disk that fills up at every write of search, fit, analyze and export.

Each command runs with its outputs on a small tmpfs (a real file system that says ENOSPC), at
sizes that stop it at different writes; each run either succeeds or ends in one
``spikenas: error:`` line, leaves no partial result, and once the disk is larger the same
command completes (search and analyze resume). Needs root to mount (CI runs as root);
skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from test_cli_fit import QUIET, SYNTHETIC, write_config
from fuzzing import only_complete_results, outcome, search_args

SIZES_KIB = (4, 12, 24, 48, 96)
ANALYZE = str(Path(__file__).parent / "configs" / "analyze_tiny.yaml")


@contextlib.contextmanager
def small_disk(path: Path, kib: int) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or 'not root'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def grow(path: Path, kib: int = 64 * 1024) -> None:
    subprocess.run(["mount", "-o", f"remount,size={kib}k", str(path)], check=True)


def no_temporary_files(root: Path) -> None:
    leftovers = [p for p in root.rglob("*") if p.name.startswith((".outputs-", ".final.yaml", ".last.ckpt", ".net.nir"))
                 or ".tmp" in p.name]
    assert not leftovers, leftovers


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("reference")
    assert outcome(search_args(str(directory))) is None
    return next((directory / "lightning_logs").glob("version_*/genotype.yaml")).read_text()


@pytest.mark.parametrize("kib", SIZES_KIB)
def test_search_on_a_full_disk_fails_in_one_line_and_resumes(tmp_path, kib, reference):
    with small_disk(tmp_path / "disk", kib) as disk:
        message = outcome(search_args(str(disk)))
        only_complete_results(disk / "lightning_logs")
        no_temporary_files(disk)
        if message is not None:
            assert "No space left on device" in message or "cannot" in message, message
        grow(disk)
        assert outcome(search_args(str(disk))) is None
        only_complete_results(disk / "lightning_logs")
        assert next((disk / "lightning_logs").glob("version_*/genotype.yaml")).read_text() == reference


@pytest.mark.parametrize("kib", SIZES_KIB)
def test_analyze_on_a_full_disk_fails_in_one_line_and_resumes(tmp_path, kib):
    args = ["analyze", "--config", ANALYZE, "--studies.run", "[correlation]", "--studies.random_networks", "3",
            "--trainer.enable_progress_bar", "false"]
    with small_disk(tmp_path / "disk", kib) as disk:
        where = ["--trainer.default_root_dir", str(disk), "--trainer.logger.init_args.save_dir", str(disk)]
        outcome([*args, *where])
        no_temporary_files(disk)
        grow(disk)
        assert outcome([*args, *where]) is None
        run = next((disk / "lightning_logs").glob("version_*"))
        assert (run / "report.md").is_file() and (run / "correlation.csv").is_file()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("trained")
    cfg = write_config(directory, SYNTHETIC)
    assert outcome(["fit", "--config", cfg, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                    "--trainer.limit_val_batches", "1", *QUIET]) is None
    return cfg, next(directory.rglob("last.ckpt"))


@pytest.mark.parametrize("kib", (4, 24, 96))
def test_fit_on_a_full_disk_never_leaves_a_truncated_checkpoint(tmp_path, kib, trained):
    cfg, _ = trained
    with small_disk(tmp_path / "disk", kib) as disk:
        args = ["fit", "--config", cfg, "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2",
                "--trainer.limit_val_batches", "1", "--trainer.default_root_dir", str(disk),
                "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.init_args.save_dir", str(disk), *QUIET]
        outcome(args)
        no_temporary_files(disk)
        for ckpt in disk.rglob("*.ckpt"):  # each checkpoint on disk is whole: it loads
            assert outcome(["validate", "--config", cfg, "--ckpt_path", str(ckpt), *QUIET,
                            "--trainer.default_root_dir", str(tmp_path / "v")]) is None


@pytest.mark.parametrize("kib", (4, 24))
def test_export_on_a_full_disk_writes_nothing_and_says_so(tmp_path, kib, trained):
    cfg, ckpt = trained
    with small_disk(tmp_path / "disk", kib) as disk:
        message = outcome(["export", "--config", cfg, "--ckpt_path", str(ckpt), "--output", str(disk / "net.nir"), "--target", "nir"])
        assert message is None or "No space left on device" in message
        if message is not None:
            assert not any(disk.iterdir())
        grow(disk)
        assert outcome(["export", "--config", cfg, "--ckpt_path", str(ckpt), "--output", str(disk / "net.nir"), "--target", "nir"]) is None
        assert (disk / "net.nir").is_file()


@pytest.mark.parametrize("output", ["file/net.nir", "", "dir", "x" * 300 + ".nir", "readonly/net.nir"])
def test_an_export_output_that_cannot_be_written_is_one_line(tmp_path, output, trained):
    cfg, ckpt = trained
    (tmp_path / "file").write_text("a file, not a directory")
    (tmp_path / "dir").mkdir()
    (tmp_path / "readonly").mkdir(mode=0o555)
    target = str(tmp_path / output) if output else ""
    message = outcome(["export", "--config", cfg, "--ckpt_path", str(ckpt), "--output", target, "--target", "nir"])
    if output == "readonly/net.nir" and message is None:  # root writes anywhere: nothing to check
        return
    assert message is not None and ("--output" in message or "cannot write" in message), message
    assert not list((tmp_path / "dir").iterdir())


def test_a_full_data_root_is_said_as_such_not_as_a_damaged_system_file(tmp_path):
    from datasets import FMNIST_SYSTEM_DIR

    if not (FMNIST_SYSTEM_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    with small_disk(tmp_path / "disk", 64) as disk:
        message = outcome(search_args(str(tmp_path / "logs"), "--data.class_path", "spikenas.data.FashionMNIST",
                                      "--data.init_args.root", str(disk)))
    assert message is not None and "cannot write" in message and "No space left on device" in message, message
    assert "damaged" not in message
