"""Resume states of ``spikenas search``: damaged, forged, sealed under another key or pointing
at another run's directory, each set aside in one line; an intact one resumes (issue 31)."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_cli_search import run_search

def _unfinished_state(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A finished search's state, as JSON, and the files to turn it back into an unfinished one."""
    import json

    first = run_search(tmp_path)
    state = next((tmp_path / "lightning_logs" / ".search_state").glob("*.json"))
    data = json.loads(state.read_text())
    data["meta"]["complete"] = False
    return first, state, data


@pytest.mark.parametrize("forgery", ["score", "nan", "type", "run_dir", "nested", "directory"])
def test_a_forged_or_damaged_search_state_is_set_aside_not_resumed(tmp_path, capsys, forgery):
    import json

    first, state, data = _unfinished_state(tmp_path)
    outside = tmp_path / "elsewhere"
    if forgery in ("score", "nan"):  # the scores a resume would reuse, changed
        for i, record in enumerate(data["records"]):
            record["score"] = float("nan") if forgery == "nan" and i else (1e9 if i == 7 else -1e9)
    elif forgery == "type":
        data["records"][0]["score"] = "abc"
    elif forgery == "run_dir":  # would make the run write every output elsewhere
        data["meta"]["run_dir"] = str(outside)
    if forgery == "nested":
        state.write_text("[" * 100000 + "]" * 100000)
    elif forgery == "directory":
        state.unlink()
        state.mkdir()
    else:
        state.write_text(json.dumps(data))
    capsys.readouterr()
    second = run_search(tmp_path)
    out = capsys.readouterr().out
    assert "was unreadable" in out and "moved it to" in out and state.with_name(state.name + ".damaged").exists()
    assert (second / "genotype.yaml").read_text() == (first / "genotype.yaml").read_text()
    assert not outside.exists()


def _sha256_checksum(data: dict) -> str:
    """The unkeyed checksum states carried before they were sealed: anyone could recompute it."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps({"meta": data["meta"], "records": data["records"]}, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("forgery", ["score", "nan", "run_dir_other_run", "run_dir_hidden"])
def test_a_state_forged_with_its_checksum_recomputed_changes_nothing(tmp_path, capsys, forgery):
    """Issue 31 S3/L4: a state edited and its (unkeyed) checksum recomputed was accepted: it
    wrote a search's results into a fit run's folder, or overwrote a finished run's network."""
    import json

    first, state, data = _unfinished_state(tmp_path)
    victim = tmp_path / "lightning_logs" / "version_9"  # another run's folder, with its files
    victim.mkdir()
    (victim / "config.yaml").write_text("another run's\n")
    if forgery == "score":
        for i, record in enumerate(data["records"]):
            record["score"] = 1e9 if i == 7 else -1e9
    elif forgery == "nan":
        for record in data["records"]:
            record["score"] = float("nan")
    elif forgery == "run_dir_other_run":
        data["meta"]["run_dir"] = str(victim)
    else:
        data["meta"]["run_dir"] = str(state.parent)
    data["checksum"] = _sha256_checksum(data)
    state.write_text(json.dumps(data))
    before = (first / "genotype.yaml").read_text(), (first / "final.yaml").read_text()
    run_search(tmp_path)
    assert "was unreadable" in capsys.readouterr().out
    second, = [p.parent for p in (tmp_path / "lightning_logs").glob("version_*/genotype.yaml") if p.parent != first]
    assert (second / "genotype.yaml").read_text() == before[0]
    assert ((first / "genotype.yaml").read_text(), (first / "final.yaml").read_text()) == before
    assert sorted(p.name for p in victim.iterdir()) == ["config.yaml"]
    assert sorted(p.name for p in state.parent.iterdir() if not p.name.startswith(state.name)) == []


def test_a_sealed_state_resumes_only_into_the_directory_it_claimed(tmp_path, capsys):
    """Even sealed with the user's own key (a state copied from another run), a state whose
    run_dir another run claimed is set aside: its outputs never land in that run's folder."""
    import json

    from spikenas.base.rundir import claim_run_dir, seal

    first, state, data = _unfinished_state(tmp_path)
    root = tmp_path / "lightning_logs"
    from types import SimpleNamespace

    other = claim_run_dir(SimpleNamespace(logger=None), root, "fit:another")  # a fit's claimed, still empty folder
    data["meta"]["run_dir"] = str(other)
    data["checksum"] = seal({"meta": data["meta"], "records": data["records"]})
    state.write_text(json.dumps(data))
    second = run_search(tmp_path)
    assert "belongs to another run" in capsys.readouterr().out
    assert second not in (first, other) and not other.exists()


def test_a_state_sealed_under_another_key_is_not_resumed(tmp_path, capsys, monkeypatch):
    from spikenas.search.records import RecordLog

    first, state, _ = _unfinished_state(tmp_path)
    log = RecordLog(state)
    log.meta["complete"] = False
    monkeypatch.setenv("SPIKENAS_STATE_KEY_FILE", str(tmp_path / "someone-else.key"))
    log.save()  # an unfinished state, sealed by another user
    monkeypatch.delenv("SPIKENAS_STATE_KEY_FILE")
    capsys.readouterr()
    assert run_search(tmp_path) != first
    assert "another user's key" in capsys.readouterr().out


def test_an_intact_unfinished_state_still_resumes(tmp_path, capsys):
    from spikenas.search.records import RecordLog

    first, state, data = _unfinished_state(tmp_path)
    log = RecordLog(state)
    log.meta["complete"] = False
    log.save()  # as an interrupted search leaves it: checksum and all
    capsys.readouterr()
    assert run_search(tmp_path) == first
    assert "resuming from" in capsys.readouterr().out
