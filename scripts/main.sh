#!/usr/bin/env bash
# The main job: set everything up, search the whole memory budget on Fashion-MNIST (configs/search_budget.yaml:
# weight precision, width, cell count and cells chosen together, short trainings choosing; budget 64 KiB
# unless SPIKENAS_BUDGET says otherwise), retrain the found network briefly (SPIKENAS_EPOCHS, default 1)
# and test it: 14.6 min alone on 2 CPU cores (search 8.5, one epoch 5.4), test accuracy 0.8943 (2026-12-07).
# This is the search the benchmark found best (docs/benchmarks.md, "Spending the whole budget");
# SpikeNAS's rule, in seconds: `SPIKENAS_CONFIG=configs/search.yaml SPIKENAS_BUDGET=256KiB bash scripts/main.sh`.
# Extra arguments go to the search, e.g. `bash scripts/main.sh --trials.epochs 0.25`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::DeprecationWarning}"

config="${SPIKENAS_CONFIG:-configs/search_budget.yaml}"
budget="${SPIKENAS_BUDGET:-64KiB}"
epochs="${SPIKENAS_EPOCHS:-1}"
marker=$(mktemp)
echo "== spikenas search --config $config --budget $budget $*"
.venv/bin/spikenas search --config "$config" --budget "$budget" "$@"
run=$(find lightning_logs -maxdepth 2 -name final.yaml -newer "$marker" -printf '%h\n' | sort -V | tail -n 1)
rm -f "$marker"
[ -n "$run" ] || { echo "main: the search wrote no final.yaml" >&2; exit 1; }

echo "== spikenas fit --config $run/final.yaml --trainer.max_epochs $epochs"
.venv/bin/spikenas fit --config "$run/final.yaml" --trainer.max_epochs "$epochs" \
    --trainer.logger.class_path lightning.pytorch.loggers.TensorBoardLogger \
    --trainer.logger.init_args.save_dir "$run" --trainer.logger.init_args.name retrain \
    --trainer.logger.init_args.version ""
echo "== spikenas test (best checkpoint)"
ckpt=$(find "$run/retrain" -name '*.ckpt' ! -name 'last.ckpt' | sort | tail -n 1)
.venv/bin/spikenas test --config "$run/final.yaml" --ckpt_path "$ckpt" \
    --trainer.logger.class_path lightning.pytorch.loggers.CSVLogger \
    --trainer.logger.init_args.save_dir "$run" --trainer.logger.init_args.name test \
    --trainer.logger.init_args.version ""

echo
echo "Results in $run/:"
while IFS='|' read -r name what; do
    if [ -e "$run/$name" ]; then printf '  %-15s %s\n' "$name" "$what"; fi
done <<'TXT'
genotype.yaml|the found cells
final.yaml|the config that retrains them (precision, macro, cells)
memory.txt|per-layer memory report
candidates.csv|stage one: every precision and cell count, searched and filtered
trials.csv|stage two: every short training, its rungs and why it stopped
trials.png|the trials' validation accuracy against bytes
study.journal|the Optuna study (optuna-dashboard opens it)
search.csv|every scored candidate
pareto.png|score against memory, budget drawn
retrain|TensorBoard logs and checkpoints of the retraining
TXT
echo "Train it fully:  .venv/bin/spikenas fit --config $run/final.yaml"
