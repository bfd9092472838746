#!/usr/bin/env bash
# Trains fiq's built-in model architecture (models/fiq-default/config.json) from scratch with fiq itself,
# on the data the built-in model is trained on, then evaluates it beside the committed model on a tree
# neither saw (BENCHMARKS.md, "The built-in model's architecture trained from scratch by fiq").
#
#   cargo build -p fiq-tools                       # the dev profile is optimized (opt-level 3)
#   tools/train_default_model.sh [WORK_DIR]        # default target/train-default
#
# Steps: `synth --per-category 4000 --seed 7` (its train split is the training data), `init-model` (random
# weights, seed 0), `pretrain` (the built-in model's objective and settings: 20 epochs x 56 steps of 128
# references), then on `synth --per-category 5000 --seed 11` (galleries of 1,000 per category): an index of
# the val split by each model and `eval --baselines --exact-only` (sum, text only, image only).
# About an hour on 2 idle cores. The trained model is WORK_DIR/run/best; to make it the built-in model,
# copy its model.safetensors over models/fiq-default/ (the config and tokenizer are the same files).
#
# Environment: FIQ_INDEX (binary, default target/debug/fiq-index), EPOCHS (default 20), SEED (init and
# draws, default 0), BASELINE (a model directory to compare with, default models/fiq-default).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${FIQ_INDEX:-$repo/target/debug/fiq-index}
work=${1:-$repo/target/train-default}
epochs=${EPOCHS:-20}
seed=${SEED:-0}
baseline=${BASELINE:-$repo/models/fiq-default}
mkdir -p "$work"
log() { echo "== $(date -u +%H:%M:%S) $*" >&2; }

log "training data: synth seed 7, 4000 per category"
[ -f "$work/synth7/synth-attributes.json" ] || "$bin" synth --out "$work/synth7" --per-category 4000 --seed 7
log "random weights (seed $seed)"
"$bin" init-model --config "$repo/models/fiq-default" --out "$work/random" --seed "$seed"
log "pretrain: $epochs epochs"
start=$SECONDS
"$bin" pretrain --synth "$work/synth7" --model "$work/random" --out "$work/run" --epochs "$epochs" \
  --seed "$seed" --quiet | tee "$work/pretrain.log"
log "pretrain took $((SECONDS - start)) s"

log "evaluation tree: synth seed 11, 5000 per category"
[ -f "$work/synth11/synth-attributes.json" ] || "$bin" synth --out "$work/synth11" --per-category 5000 --seed 11
for name in fiq baseline; do
  model=$work/run/best
  [ "$name" = baseline ] && model=$baseline
  rm -rf "$work/index-$name"
  "$bin" build --fashioniq "$work/synth11" --split val --model "$model" --out "$work/index-$name" --quiet
  "$bin" eval --fashioniq "$work/synth11" --split val --index "$work/index-$name" --model "$model" \
    --baselines --exact-only --quiet --json "$work/eval-$name.json" | tee "$work/eval-$name.txt"
  log "evaluated $name ($model)"
done
