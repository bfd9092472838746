#!/usr/bin/env bash
# Issue 6 evidence (BENCHMARKS.md, "Default model and fusion"): the built-in default model on a synthetic
# FashionIQ tree it never saw (seed 11; it was trained on the train split of seed 7), with every fusion:
# text only, image only, sum, weighted, and a Combiner trained with and without index-mined hard negatives.
#
#   cargo build --release -p fiq-tools
#   bash tools/bench/default_model.sh [WORK_DIR]        # default target/bench-default-model
#
# Environment: FIQ_INDEX (binary, default target/release/fiq-index), PER_CATEGORY (default 5000),
# EPOCHS (combiner epochs, default 10), MINED (mined negatives per query, default 16), ALPHAS (the weighted
# fusion's text weights to choose from on the train split, default "0.3 0.4 0.45 0.5 0.55 0.6 0.7").
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${FIQ_INDEX:-$repo/target/release/fiq-index}
work=${1:-$repo/target/bench-default-model}
per_category=${PER_CATEGORY:-5000}
epochs=${EPOCHS:-10}
mined=${MINED:-16}
alphas=${ALPHAS:-0.3 0.4 0.45 0.5 0.55 0.6 0.7}
export OPENBLAS_NUM_THREADS=1
data=$work/fashioniq index=$work/index
mkdir -p "$work"
log() { echo "== $*" >&2; }
timed() { local start=$SECONDS; "$@"; log "$(basename "$1") ${2:-}: $((SECONDS - start)) s"; }

log "synthetic FashionIQ, seed 11, $per_category per category"
rm -rf "$data" "$index" "$work"/combiner-* "$work"/*.json
"$bin" synth --out "$data" --per-category "$per_category" --seed 11
# One index holds both splits: `eval` searches the evaluated split's gallery within it (by key), and
# `train` needs the train and val images together.
log "index with the default model (no --model): val and train galleries"
timed "$bin" build --fashioniq "$data" --out "$index" --split val --quiet
timed "$bin" build --fashioniq "$data" --out "$index" --split train --quiet

train() {
  local out=$1; shift
  local start=$SECONDS
  # train encodes the texts with the index's model (the default one) and keeps them in $out/text-features.
  "$bin" train --fashioniq "$data" --index "$index" --out "$out" \
    --epochs "$epochs" --seed 0 "$@" >"$out.log" 2>"$out.stderr"
  cat "$out.log"
  log "train $(basename "$out"): $((SECONDS - start)) s"
}
log "combiner without mined negatives"
train "$work/combiner-plain"
log "combiner with $mined mined negatives per query, re-mined every 2 epochs"
train "$work/combiner-mined" --mined-negatives "$mined" --mine-every 2

evaluate() {
  local json=$1 split=$2; shift 2
  "$bin" eval --fashioniq "$data" --index "$index" --split "$split" --quiet --exact-only --json "$json" "$@" \
    >/dev/null
}
log "weighted fusion: alpha chosen on the train split"
best_alpha=0.5 best_score=-1
for alpha in $alphas; do
  evaluate "$work/alpha-$alpha.json" train --fusion weighted --alpha "$alpha"
  score=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1]))["reports"][0]; print(sum(m['recall'] for m in r['average'])/len(r['average']))" "$work/alpha-$alpha.json")
  log "alpha $alpha: train mean recall $score"
  if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$score" "$best_score"; then
    best_alpha=$alpha best_score=$score
  fi
done

log "evaluation on the val split"
timed evaluate "$work/sum.json" val --fusion sum --baselines
evaluate "$work/weighted.json" val --fusion weighted --alpha "$best_alpha"
evaluate "$work/combiner-mined.json" val --fusion combiner --combiner "$work/combiner-mined/best"
evaluate "$work/combiner-plain.json" val --fusion combiner --combiner "$work/combiner-plain/best"
python3 "$repo/tools/python/default_model_report.py" \
  "text only=$work/sum.json:1" "image only=$work/sum.json:2" "sum=$work/sum.json:0" \
  "weighted (alpha $best_alpha)=$work/weighted.json" \
  "combiner, mined negatives=$work/combiner-mined.json" "combiner, no mining=$work/combiner-plain.json"
