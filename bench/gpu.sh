#!/usr/bin/env bash
# Issue 13's GPU figures in one prepared run (about 9 minutes on an H200), for the `device` tool.
#
#   here, once per checkout:  bash bench/gpu.sh wheels   # the pure-Python wheels the GPU image lacks -> .whl/
#   here, before a GPU run:   bash bench/gpu.sh dry      # every step's arguments parse (no GPU needed)
#   on the GPU machine:       device run: command "bash bench/gpu.sh", carry [".whl"], timeout_s 600
#
# Every step has its own time limit, so one slow step cannot eat the others, and everything it
# prints (but progress bars) is shown and kept in $OUT/gpu.log. The steps, most important first:
#   1. scoring throughput at SNASNet's CIFAR-10 macro at 263e6bc's width 128: one batch, then two
#      batches of 256 (SNASNet's protocol), then SNASNet HEAD's width (256/512, its default), as `spikenas search` scores;
#   2. does TF32 (and channels-last) keep the ranking of 200 candidates (tau >= 0.99)?
#   3. spikenas against 500 random candidates at SNASNet's protocol (speedup extrapolated to
#      5,000; one 10-minute call does not hold the 5,000 with the rest: run
#      `search_speed.py --evolution-candidates 0` alone for the measured speedup);
#   4. the Lightning training step against the bare compiled step;
#   5. would scoring several candidates per launch pay on the GPU (it does not on the CPU)?
#   6. the CUDA-only tests (metric updates never synchronise).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${1:-}" = wheels ]; then
    .venv/bin/python -m pip wheel -q --no-deps -w .whl norse==1.1.0 nir==1.0.8 nirtorch==2.6 \
        jsonargparse==4.53.0 docstring-parser typeshed-client
    grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
    ls .whl
    exit
fi

STEPS=(  # "<seconds> <script> <arguments>"; the limits add up to 495 s, inside one 600 s call
    "75 score_throughput.py --candidates 30 --channels 128 --score-batches 1"
    "75 score_throughput.py --candidates 30 --channels 128"
    "60 score_throughput.py --candidates 10"
    "90 score_precision.py --candidates 200 --channels 32 --batch-size 256"
    "120 search_speed.py --candidates 500 --evolution-candidates 0"
    "45 train_step.py --batch-size 128 --steps 30 --channels-last"
    "30 stacking.py --repeats 10"
)

if [ "${1:-}" = dry ]; then
    cd bench
    for step in "${STEPS[@]}"; do
        read -r limit script args <<<"$step"
        # parse the arguments only: --help after them exits before any work
        ../.venv/bin/python "$script" $args --help >/dev/null || { echo "gpu.sh: $script rejects: $args" >&2; exit 1; }
        echo "ok ($limit s): $script $args"
    done
    exit
fi

[ -d .whl ] || { echo "gpu.sh: no .whl/: run 'bash bench/gpu.sh wheels' here and carry .whl" >&2; exit 1; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 SPIKENAS_DISABLE_PLUGIN_AUTOLOAD=1
out="${OUT:-/tmp/gpu-out}"
mkdir -p "$out"
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
cd bench
for step in "${STEPS[@]}"; do
    read -r limit script args <<<"$step"
    echo "== $script $args (limit ${limit}s)" | tee -a "$out/gpu.log"
    timeout "$limit" python3 "$script" $args 2>&1 | tr '\r' '\n' | grep -v "it/s" | tee -a "$out/gpu.log"
done
echo "== CUDA-only tests" | tee -a "$out/gpu.log"
timeout 45 python3 -m pytest -q -p no:cacheprovider ../tests/test_metrics.py 2>&1 | tail -n 3 | tee -a "$out/gpu.log"
