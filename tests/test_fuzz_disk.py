"""A disk that fills up at the k-th write (k drawn by hypothesis), on any user account: every
``open`` for writing, ``os.open`` with a write flag, ``os.mkdir``, ``os.replace`` and ``os.rename``
is counted while a tiny search or fit runs, and the k-th raises ``OSError(ENOSPC)``.

Each run succeeds or ends in one ``spikenas: error:`` line, leaves no temporary file and no
partial result (a search's run directory holds its whole result set or nothing; every
checkpoint on disk loads), and the same command rerun on a healthy disk finishes with the
result of a run that never failed. ``tests/test_full_disk.py`` does the same on a real full
file system (root only). Budgets, seed and long run: see :mod:`fuzzing`.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import BUDGETS, fuzz, no_temporary_files, only_complete_results, outcome, search_args
from spikenas.train.checkpoint import read_checkpoint
from test_fuzz import FIT_CONFIG, FIT_FIXED

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class Writes:
    """Counts the writes; the ``fail_at``-th (1-based; None: none) raises ENOSPC."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.count, self.fail_at = 0, fail_at

    def hit(self, what) -> None:
        self.count += 1
        if self.count == self.fail_at:
            raise OSError(errno.ENOSPC, "No space left on device", str(what))


@contextlib.contextmanager
def disk(writes: Writes) -> Iterator[Writes]:
    real_open, real_os_open = builtins.open, os.open
    real = {name: getattr(os, name) for name in ("mkdir", "replace", "rename")}

    def open_(file, mode="r", *args, **kwargs):
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            writes.hit(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & WRITE_FLAGS:
            writes.hit(path)
        return real_os_open(path, flags, *args, **kwargs)

    def wrap(name):
        def counted(path, *args, **kwargs):
            writes.hit(path)
            return real[name](path, *args, **kwargs)
        return counted

    patches = {"open": open_}
    try:
        builtins.open = open_
        os.open = os_open
        for name in real:
            setattr(os, name, wrap(name))
        yield writes
    finally:
        builtins.open, os.open = real_open, real_os_open
        for name, function in real.items():
            setattr(os, name, function)
        del patches


def genotype_of(logs: Path) -> str:
    return next((logs / "lightning_logs").glob("version_*/genotype.yaml")).read_text()


@pytest.fixture(scope="module")
def search_reference(tmp_path_factory) -> tuple[str, int]:
    """A healthy search's genotype and how many writes it makes."""
    directory = tmp_path_factory.mktemp("reference")
    with disk(Writes()) as writes:
        assert outcome(search_args(directory)) is None
    return genotype_of(directory), writes.count


@contextlib.contextmanager
def failed_at(k: int, args_of) -> Iterator[Path]:
    """A temporary logs root in which the command ``args_of(logs)`` ran with its ``k``-th write
    failing (ENOSPC): it succeeded or ended in the one line that says so, leaving no temporary
    file. Yields the logs root for the checks and the rerun."""
    with tempfile.TemporaryDirectory(prefix="spikenas-disk-") as directory:
        logs = Path(directory)
        with disk(Writes(k)):
            message = outcome(args_of(logs))
        if message is not None:
            assert "No space left on device" in message, message
        no_temporary_files(logs)
        yield logs


@BUDGETS
def test_a_search_on_a_disk_full_at_any_write_fails_in_one_line_and_resumes(budget, search_reference):
    genotype, total = search_reference

    @fuzz(budget, ci=3)
    @given(st.integers(1, total))
    def check(k):
        with failed_at(k, search_args) as logs:
            only_complete_results(logs / "lightning_logs")
            assert outcome(search_args(logs)) is None
            only_complete_results(logs / "lightning_logs")
            assert genotype_of(logs) == genotype

    check()


def fit_args(config: Path, logs: Path) -> list[str]:
    return ["fit", "--config", str(config), "--trainer.default_root_dir", str(logs), *FIT_FIXED[:6], "--trainer.max_epochs", "2"]


def weights(logs: Path) -> tuple[int, int, dict[str, tuple]]:
    """The newest last.ckpt's epoch, step and parameter shapes (two fits in one process do not
    give bit-equal weights, so the rerun is held to the same training, not the same bits)."""
    last = read_checkpoint(sorted(logs.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime_ns)[-1])
    return last["epoch"], last["global_step"], {n: tuple(t.shape) for n, t in last["state_dict"].items()}


@pytest.fixture(scope="module")
def fit_reference(tmp_path_factory) -> tuple[Path, dict, int]:
    directory = tmp_path_factory.mktemp("fit")
    config = directory / "fit.yaml"
    config.write_text(yaml.safe_dump(FIT_CONFIG))
    with disk(Writes()) as writes:
        assert outcome(fit_args(config, directory / "logs")) is None
    return config, weights(directory / "logs"), writes.count


@BUDGETS
def test_a_fit_on_a_disk_full_at_any_write_fails_in_one_line_and_the_rerun_trains_the_same(budget, fit_reference):
    config, reference, total = fit_reference

    @fuzz(budget, ci=3)
    @given(st.integers(1, total))
    def check(k):
        with failed_at(k, lambda logs: fit_args(config, logs)) as logs:
            for ckpt in logs.rglob("*.ckpt"):  # each checkpoint on disk is whole
                read_checkpoint(ckpt)
            assert outcome(fit_args(config, logs)) is None
            assert weights(logs) == reference

    check()
