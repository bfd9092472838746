#!/usr/bin/env bash
# Text-tower fine-tuning speed, fiq beside PyTorch in the same run: the built-in model, batch 64, the
# hard level's training captions, at 1 and 2 threads, each side twice in alternating order. fiq's figure
# is `train --what text-encoder`'s triplets/s for one epoch (forward, backward, AdamW; no validation or
# mining); PyTorch's is tools/python/finetune_peer.py's (the same step on transformers' CLIPModel).
#
# Usage: tools/bench/finetune_speed.sh [FIQ_INDEX_BINARY] [PYTHON]   (PYTHON needs torch + transformers)
# BASELINE=OTHER_FIQ_INDEX adds a column for another fiq binary (an earlier commit), timed in the same rounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release/fiq-index}
python=${2:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" synth --out "$work/data" --per-category 2000 --seed 11 --difficulty hard >/dev/null
for split in val train; do
  "$bin" build --fashioniq "$work/data" --out "$work/index" --split "$split" --quiet >/dev/null 2>&1
done
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), flags: $(grep -o -w 'avx2\|fma\|avx512f\|avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | xargs)"
baseline=${BASELINE:-}
fiq() {
  RAYON_NUM_THREADS=$1 "${2:-$bin}" train --what text-encoder --fashioniq "$work/data" --index "$work/index" \
    --out "$work/ft-$1" --epochs 1 --batch-size 64 --lr 1e-4 --seed 1 2>/dev/null \
    | awk '$1 == "1" {print $3}'
  rm -rf "$work/ft-$1"
}
torch() {
  "$python" tools/python/finetune_peer.py models/fiq-default "$work/data" --batch 64 --steps 22 \
    --threads "$1" 2>/dev/null | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["triplets_per_second"]))'
}
if [[ -n $baseline ]]; then
  echo "| threads | round | fiq triplets/s | PyTorch triplets/s | ratio | fiq before (BASELINE) triplets/s |"
  echo "|---|---|---|---|---|---|"
else
  echo "| threads | round | fiq triplets/s | PyTorch triplets/s | ratio |"
  echo "|---|---|---|---|---|"
fi
for threads in 1 2; do
  for round in 1 2; do
    if [[ $round == 1 ]]; then a=$(fiq "$threads"); b=$(torch "$threads"); else b=$(torch "$threads"); a=$(fiq "$threads"); fi
    before=""
    [[ -n $baseline ]] && before=" $(fiq "$threads" "$baseline") |"
    echo "| $threads | $round | $a | $b | $(python3 -c "print(f'{$a / $b:.2f}x')") |$before"
  done
done
