"""``spikenas.base.files``: a set of results appears whole or not at all."""

from __future__ import annotations

import errno
import os

import pytest

from spikenas.base import files


@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_an_output_set_whose_move_fails_part_way_leaves_the_old_files(tmp_path, monkeypatch, fail_at):
    """Found by the fuzz suite: a full disk at the k-th rename left 4 of a search's 5 results."""
    (tmp_path / "b.csv").write_text("old b")
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(OSError):
        with files.output_set(tmp_path) as staging:
            for name in ("a.yaml", "b.csv", "c.png"):
                (staging / name).write_text(f"new {name}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.csv"]
    assert (tmp_path / "b.csv").read_text() == "old b"


def test_an_output_set_replaces_the_old_files_on_success(tmp_path):
    (tmp_path / "b.csv").write_text("old b")
    with files.output_set(tmp_path) as staging:
        for name in ("a.yaml", "b.csv"):
            (staging / name).write_text(f"new {name}")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"a.yaml": "new a.yaml", "b.csv": "new b.csv"}
