#!/usr/bin/env bash
# From-scratch training speed of the built-in model's architecture, fiq beside PyTorch in the same run:
# `fiq-index pretrain` and tools/python/train_default_model.py take the same step (128 references, 384
# images and 512 texts through both towers, composed + image-text loss, AdamW) on the same data (the train
# split of `synth --per-category 4000 --seed 7`), 2 threads, each side twice in alternating order. Both
# figures are references per second over one epoch of STEPS steps, without loading or validation. (fiq's
# is its run record's; PyTorch's is STEPS x 128 over the epoch time the script prints, whole seconds.)
#
# Usage: tools/bench/pretrain_speed.sh [FIQ_INDEX_BINARY] [PYTHON]   (PYTHON needs torch + transformers)
# BASELINE=OTHER_FIQ_INDEX adds a column for another fiq binary, timed in the same rounds. STEPS default 20.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/debug/fiq-index}
python=${2:-python3}
steps=${STEPS:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" synth --out "$work/s7" --per-category 4000 --seed 7 >/dev/null
"$bin" init-model --config models/fiq-default --out "$work/random" --seed 0 >/dev/null
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), flags: $(grep -o -w 'avx2\|fma\|avx512f\|avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | xargs)"
baseline=${BASELINE:-}
fiq() {
  RAYON_NUM_THREADS=2 "${1:-$bin}" pretrain --synth "$work/s7" --model "$work/random" --out "$work/fiq" \
    --epochs 1 --steps-per-epoch "$steps" --quiet >/dev/null 2>&1
  python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["history"][0]["examples_per_second"], 1))' \
    "$work/fiq/last/fiq-pretrain.json"
  rm -rf "$work/fiq"
}
torch() {
  "$python" tools/python/train_default_model.py --data "$work/s7" --out "$work/torch" --epochs 1 \
    --steps-per-epoch "$steps" --threads 2 2>/dev/null \
    | awk -v refs=$((steps * 128)) '$1 == "epoch" {for (i = 1; i < NF; i++) if ($(i + 1) == "s") printf "%.1f\n", refs / $i}'
  rm -rf "$work/torch"
}
header="| round | fiq references/s | PyTorch references/s | fiq / PyTorch |"
[[ -n $baseline ]] && header="$header fiq BASELINE references/s |"
echo "$header"
echo "|---|---|---|---|$([[ -n $baseline ]] && echo '---|')"
for round in 1 2; do
  if [[ $round == 1 ]]; then a=$(fiq); b=$(torch); else b=$(torch); a=$(fiq); fi
  line="| $round | $a | $b | $(python3 -c "print(f'{$a / $b:.2f}x')") |"
  [[ -n $baseline ]] && line="$line $(fiq "$baseline") |"
  echo "$line"
done
