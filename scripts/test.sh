#!/usr/bin/env bash
# Set up (idempotent) and run the tests: bash scripts/test.sh [pytest args, e.g. -m slow]
# On every CPU (pytest-xdist: -n auto, PYTEST_XDIST_AUTO_NUM_WORKERS=N for N workers); tests that
# share a module-scoped fixture stay on one worker (--dist loadgroup, tests/conftest.py). Arguments
# come last and win: -n 0 runs everything in this one process (as --pdb does by itself).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -n auto --dist loadgroup "$@"
