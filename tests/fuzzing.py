"""What the fuzz tests (``tests/test_fuzz*.py``) share: their budgets, the one-line outcome of a
command, and the sandbox that proves a command wrote nothing outside its own run directory.

Budgets. Every fuzz test runs twice over: as ``[ci]`` in the default suite, with a few examples
drawn afresh on every run (the seed is printed in pytest's header; ``--hypothesis-seed=N``
replays a run), and as ``[long]`` behind the ``fuzz`` marker (deselected by default) with 50
times as many examples and no deadline: ``SPIKENAS_FUZZ=long pytest -m fuzz tests/test_fuzz*.py``
is about 30 minutes. ``SPIKENAS_FUZZ=long`` alone also gives the ``[ci]`` variants the long
budget; ``SPIKENAS_FUZZ_EXAMPLES=N`` sets the examples of every test.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, Phase, settings

from spikenas.app.cli import main

CONFIGS = Path(__file__).parent / "configs"
SEARCH_CONFIG = str(CONFIGS / "search_tiny.yaml")
ANALYZE_CONFIG = str(CONFIGS / "analyze_tiny.yaml")
RESULTS = {"genotype.yaml", "final.yaml", "search.csv", "pareto.png", "memory.txt"}
LONG_FACTOR = 50  # the [long] variant's examples per [ci] example: about 30 minutes for the whole suite

# [ci] reports the failing example as drawn (shrinking reruns whole commands for minutes); [long] shrinks it
settings.register_profile("spikenas-long", deadline=None, database=None, suppress_health_check=list(HealthCheck))
settings.register_profile("spikenas-ci", settings.get_profile("spikenas-long"),
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])

BUDGETS = pytest.mark.parametrize("budget", ["ci", pytest.param("long", marks=pytest.mark.fuzz)])
"""Parametrizes a fuzz test over its two budgets (``[long]`` is marked ``fuzz``)."""


def fuzz(budget: str, ci: int) -> settings:
    """The hypothesis settings of one fuzz test: ``ci`` examples in the default suite (chosen so
    that the whole fuzz suite stays within about 40 s), ``LONG_FACTOR`` times as many in the long
    run; ``SPIKENAS_FUZZ`` (``ci`` or ``long``) and ``SPIKENAS_FUZZ_EXAMPLES`` override."""
    budget = os.environ.get("SPIKENAS_FUZZ") or budget
    if budget not in ("ci", "long"):
        raise ValueError(f"SPIKENAS_FUZZ={budget!r}: use ci or long")
    examples = ci * (LONG_FACTOR if budget == "long" else 1)
    examples = int(os.environ.get("SPIKENAS_FUZZ_EXAMPLES") or examples)
    return settings(settings.get_profile(f"spikenas-{budget}"), max_examples=examples)


# ---------------------------------------------------------------------------------------------
# one command, one outcome


def outcome(args: list[str]) -> str | None:
    """``main(args)``: None when it succeeded, its one error line otherwise (asserted: one
    ``spikenas: error:`` line and no traceback). An exception that escapes ``main`` fails the
    test with its traceback: users would see it."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(args)
            code = None
        except SystemExit as exit_:
            code = exit_.code
    assert "Traceback" not in err.getvalue(), err.getvalue()[-3000:]
    if code in (None, 0):
        return None
    message = str(code)
    assert message.startswith("spikenas: error: ") and "\n" not in message, message[:3000]
    return message


def search_args(directory: str | Path, *extra: str) -> list[str]:
    return ["search", "--config", SEARCH_CONFIG, "--trainer.default_root_dir", str(directory),
            "--trainer.logger.init_args.save_dir", str(directory), "--trainer.enable_progress_bar", "false", *extra]


def only_complete_results(logs: Path) -> None:
    """Every search run directory in ``logs`` holds the whole result set (hidden entries aside)."""
    for entry in logs.iterdir() if logs.exists() else []:
        if entry.name.startswith(".") or not entry.is_dir() or entry.is_symlink():
            continue
        names = {p.name for p in entry.iterdir()}
        assert names == RESULTS, f"{entry}: {sorted(names)}"


def no_temporary_files(root: Path) -> None:
    """No staging directory or temporary file of an atomic write is left under ``root``."""
    leftovers = [p for p in root.rglob("*") if p.name.startswith(".outputs-") or (p.name.startswith(".") and p.is_file())]
    assert not leftovers, leftovers


# ---------------------------------------------------------------------------------------------
# the sandbox: a tree of victims around the logs root, snapshot before and after


def snapshot(base: Path) -> dict[str, tuple]:
    """Every entry under ``base`` (symlinks not followed): relative path -> what it is (a
    directory; a symlink and its target; a file's size and mtime)."""
    entries: dict[str, tuple] = {}
    for directory, dirs, files in os.walk(base):
        for name in dirs + files:
            path = Path(directory, name)
            relative = str(path.relative_to(base))
            if path.is_symlink():
                entries[relative] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[relative] = ("dir",)
            else:
                stat = path.lstat()
                entries[relative] = ("file", stat.st_size, stat.st_mtime_ns)
    return entries


class Sandbox:
    """One example's world (``base``): the logs root ``logs/lightning_logs`` (``--trainer.default_root_dir
    logs``), another run's directory ``version_7`` and a hidden directory in it, files beside
    and above it, a directory ``outside`` (and a symlink ``version_5`` to it), and the working
    directory ``cwd``. :meth:`confined` says that a command changed nothing but its own run
    directory."""

    OTHER_RUN = "version_7"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.logs = base / "logs"
        self.root = self.logs / "lightning_logs"
        self.outside = base / "outside"
        self.cwd = base / "cwd"
        other = self.root / self.OTHER_RUN
        for path in (self.cwd / "victim.txt", self.outside / "victim.ckpt", self.outside / "networks.csv",
                     base / "victim.txt", base / "last.ckpt", self.logs / "victim.txt", self.root / "victim.txt",
                     self.root / ".hidden" / "victim.txt", other / "final.yaml", other / "networks.csv",
                     other / "checkpoints" / "last.ckpt", other / "checkpoints" / "best.ckpt", other / "hparams.yaml"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"victim {path.name}\n")
        (self.root / ".claims").mkdir(exist_ok=True)
        (self.root / ".claims" / self.OTHER_RUN).write_text("1\n")
        (self.root / "version_5").symlink_to(self.outside, target_is_directory=True)
        self.before = snapshot(base)

    def retake(self) -> None:
        """Snapshot again (after a fixture's own set-up run, say)."""
        self.before = snapshot(self.base)

    def new_runs(self) -> list[Path]:
        """The run directories created under the logs root since the snapshot."""
        return [p for p in self.root.glob("version_*") if f"logs/lightning_logs/{p.name}" not in self.before]

    def changes(self) -> dict[str, str]:
        """path -> 'added', 'removed' or 'changed' since the snapshot."""
        after = snapshot(self.base)
        changed = {p: "removed" for p in self.before.keys() - after.keys()}
        changed.update({p: "added" for p in after.keys() - self.before.keys()})
        changed.update({p: "changed" for p in self.before.keys() & after.keys()
                        if self.before[p] != after[p] and self.before[p][0] != "dir"})
        return changed

    def confined(self, own: tuple[str, ...] = (), states: tuple[str, ...] = (".search_state", ".analyze_state")) -> None:
        """Asserts that every change since the snapshot is inside a run directory this run
        created under the logs root, a new claim, a resume state (``states``), or under
        ``own`` (paths relative to ``base`` a run may write to: the run directory it resumes)."""
        prefix = "logs/lightning_logs/"
        for path, what in sorted(self.changes().items()):
            if any(path == o or path.startswith(o.rstrip("/") + "/") for o in own):
                continue
            if path.startswith(prefix):
                top = path[len(prefix):].split("/")[0]
                new_run = top.startswith("version_") and f"{prefix}{top}" not in self.before
                new_claim = top == ".claims" and what == "added"
                if new_run or new_claim or top in states:
                    continue
            pytest.fail(f"{what} outside the run's own directory: {path}")


@contextlib.contextmanager
def sandbox() -> Iterator[Sandbox]:
    """A fresh :class:`Sandbox` in a temporary directory, the working directory inside it."""
    with tempfile.TemporaryDirectory(prefix="spikenas-fuzz-") as directory:
        box = Sandbox(Path(directory))
        cwd = os.getcwd()
        os.chdir(box.cwd)
        try:
            yield box
        finally:
            os.chdir(cwd)


def copy_tree(source: Path, target: Path) -> None:
    """``source`` into ``target`` with mtimes (a template run, copied into a sandbox)."""
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)

