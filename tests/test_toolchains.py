"""A consumer toolchain that is missing skips its tests, except under ``CI=true`` (the consumer
matrix) or where ``SPIKENAS_TOOLCHAINS`` names it (in-process imports), where it fails them."""

from __future__ import annotations

import pytest

import consumer_matrix
from toolchains import in_ci, missing, require


def test_ci_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert in_ci()
    monkeypatch.setenv("CI", "false")
    assert not in_ci()
    monkeypatch.delenv("CI")
    assert not in_ci()


def test_a_missing_toolchain_skips_where_optional_and_fails_where_required(monkeypatch):
    with pytest.raises(pytest.skip.Exception, match="no such toolchain"):
        missing("no such toolchain", required=False)
    with pytest.raises(pytest.fail.Exception, match="no such toolchain .*required here"):
        missing("no such toolchain", required=True)
    monkeypatch.delenv("SPIKENAS_TOOLCHAINS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="spikenas_no_such_toolchain does not import here"):
        require("spikenas_no_such_toolchain")
    monkeypatch.setenv("SPIKENAS_TOOLCHAINS", "sinabs, spikenas_no_such_toolchain")
    with pytest.raises(pytest.fail.Exception, match="spikenas_no_such_toolchain does not import here"):
        require("spikenas_no_such_toolchain")
    assert require("json").dumps(1) == "1"


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_the_consumer_matrix_fails_under_ci_when_pip_cannot_install_a_toolchain(ci, outcome, monkeypatch):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(consumer_matrix, "install", lambda toolchain: f"pip could not install {toolchain}'s environment")
    with pytest.raises(outcome, match="pip could not install sinabs's environment"):
        consumer_matrix.check_runs_as_spikenas(consumer_matrix.Case("every-op", 32, "sinabs"), matrix=None, labels=None)
