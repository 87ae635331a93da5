#!/usr/bin/env bash
# Set up (idempotent) and run the tests: bash scripts/test.sh [pytest args, e.g. -m slow]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
