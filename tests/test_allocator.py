"""The CPU allocator setting of ``spikenas search``: applied on Linux/glibc, and it can be turned off."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

CODE = "from spikenas.base.allocator import tune_for_command; print(tune_for_command())"


def run(env_value: str | None) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if k != "SPIKENAS_SYSTEM_MALLOC"}
    if env_value is not None:
        env["SPIKENAS_SYSTEM_MALLOC"] = env_value
    return subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_the_setting_is_applied_unless_turned_off():
    assert run(None) == "True"  # glibc accepted every mallopt setting
    assert run("1") == "False" and run("yes") == "False"
    assert run("0") == "True"
