#!/usr/bin/env bash
# Issue 5's benchmark: the main job on a synthetic FashionIQ val split the size of the real one
# (3 x 5,000 = 15,000 gallery images, 3 x 2,000 = 6,000 triplets; real FashionIQ val: 15,536 images,
# 6,016 triplets), timed by stage: decode, encode, index (store + IVF), tune, search (IVF and exact).
#
#   tools/bench/pipeline_15k.sh FIQ_BIN [MODEL_DIR]     (MODEL_DIR: default fiq's built-in model)
#
# Environment: WORK (default /tmp/fiq-bench-15k, about 400 MiB), SEED (default 2027: a seed the
# default model never trained on).
set -euo pipefail
bin=$1
model_args=(); [ $# -ge 2 ] && model_args=(--model "$2")
work=${WORK:-/tmp/fiq-bench-15k}
seed=${SEED:-2027}
rm -rf "$work"; mkdir -p "$work"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $(date -u +%FT%TZ)"
echo "fiq: $("$bin" --version)"
t() { /usr/bin/time -f "$1: wall %e s, peak RSS %M KiB" "${@:2}"; }
t synth "$bin" synth --out "$work/fashioniq" --per-category 25000 --seed "$seed"
t build "$bin" build --fashioniq "$work/fashioniq" --split val "${model_args[@]}" --out "$work/index" --quiet
t tune "$bin" tune "$work/index" -k 50 --target-recall 0.99
t eval "$bin" eval --fashioniq "$work/fashioniq" --split val --index "$work/index" "${model_args[@]}" \
    --baselines --json "$work/report.json" --quiet
"$bin" info "$work/index" | head -4
