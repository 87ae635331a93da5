#!/usr/bin/env bash
# Set up everything spikenas needs, idempotently (a second run takes a second):
#   - .venv (python3.11, else python3 >= 3.11) with `pip install -e .[dev]` at the versions of
#     scripts/constraints.txt (torch 2.14.1 + torchvision 0.29.1, see docs/install.md) and the
#     example plugin plugins/spikenas-dwsep;
#   - Fashion-MNIST from Debian (`dataset-fashion-mnist`) when running as root and it is missing.
# Installs are redone only when setup.cfg/pyproject.toml/constraints change or an import fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "setup: $*"; }

if [ ! -x .venv/bin/python ]; then
    PY=""
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            PY="$candidate"
            break
        fi
    done
    if [ -z "$PY" ]; then
        echo "setup: error: needs Python >= 3.11 (python3.11 or python3)" >&2
        exit 1
    fi
    log "creating .venv with $("$PY" --version 2>&1)"
    "$PY" -m venv .venv
fi

stamp=.venv/.spikenas-setup
want=$(cat setup.cfg pyproject.toml scripts/constraints.txt plugins/spikenas-dwsep/setup.cfg plugins/spikenas-dwsep/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
    .venv/bin/python -c 'import spikenas, spikenas_dwsep, lightning, norse, torchvision' 2>/dev/null; then
    log "python packages up to date"
else
    log "installing spikenas[dev] and plugins/spikenas-dwsep into .venv (about a minute)"
    .venv/bin/python -m pip install -q -c scripts/constraints.txt -e '.[dev]'
    .venv/bin/python -m pip install -q -c scripts/constraints.txt -e plugins/spikenas-dwsep
    echo "$want" >"$stamp"
fi

FMNIST=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ -f "$FMNIST" ]; then
    log "Fashion-MNIST present ($(dirname "$FMNIST"))"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Fashion-MNIST (apt-get install dataset-fashion-mnist)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; }; then
        log "warning: could not install dataset-fashion-mnist; tests that need it are skipped"
    fi
else
    log "warning: Fashion-MNIST missing and cannot apt-get here (needs root):" \
        "apt-get install dataset-fashion-mnist; tests that need it are skipped"
fi
