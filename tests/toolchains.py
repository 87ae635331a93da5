"""Tests that need a consumer toolchain (snnTorch, norse, sinabs) imported in-process or built by
pip: they skip where it is absent, except where it must be there, where they fail.

It must be there when ``CI=true`` (a CI run that checks no consumer is not green) for the
consumer matrix (``pytest -m consumers``), and, for an in-process import, when
``SPIKENAS_TOOLCHAINS`` names it (comma-separated; ``noxfile.py``'s ``spikenas_beside_sinabs``
sets ``sinabs``, so the sinabs tests fail there rather than skip if sinabs does not import).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def in_ci() -> bool:
    """``CI=true`` (GitHub Actions, GitLab, ``.ci/run`` all set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def missing(reason: str, required: bool) -> None:
    """Fail with ``reason`` where the toolchain is ``required``, else skip with it."""
    if required:
        pytest.fail(f"{reason} (required here: CI=true or SPIKENAS_TOOLCHAINS)", pytrace=False)
    pytest.skip(reason)


def require(module: str) -> ModuleType:
    """``module`` imported; skipped where it is not installed, failed where ``SPIKENAS_TOOLCHAINS`` names it."""
    required = module in os.environ.get("SPIKENAS_TOOLCHAINS", "").replace(" ", "").split(",")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing(f"{module} does not import here ({exc}); noxfile.py's spikenas_beside_sinabs installs it", required)
