#!/usr/bin/env bash
# Issue 15, CPU part (BENCHMARKS.md, "bf16 on the CPU"): fiq's encoder in f32 and bf16 beside PyTorch
# (transformers CLIPModel in f32 and in bf16, as a user would run it) on the same machine, in one run; then
# what bf16 costs in retrieval: the built-in default model builds and evaluates the same synthetic
# FashionIQ val split (a seed it never saw) in f32, in bf16, and bf16 queries against the f32 index.
#
#   python3 tools/python/clip_reference.py full bench-data/vit-b32      # random-weight ViT-B/32, once
#   cargo build --release -p fiq --example bench_encoder && cargo build --release -p fiq-tools
#   bash tools/bench/cpu_bf16.sh [WORK_DIR]              # default target/bench-cpu-bf16
#
# Environment: PYTHON (with torch and transformers), VIT (the ViT-B/32 directory, default
# bench-data/vit-b32), FIQ_INDEX, BENCH_ENCODER (binaries), PER_CATEGORY (default 2000), DIFFICULTY
# (default easy; hard gives the issue-13 benchmark), REPEATS (default 2). Needs a CPU with AVX512-BF16.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$repo/target/bench-cpu-bf16}
python=${PYTHON:-python3}
vit=${VIT:-$repo/bench-data/vit-b32}
bin=${FIQ_INDEX:-$repo/target/release/fiq-index}
bench=${BENCH_ENCODER:-$repo/target/release/examples/bench_encoder}
per_category=${PER_CATEGORY:-2000}
difficulty=${DIFFICULTY:-easy}
repeats=${REPEATS:-2}

mkdir -p "$work"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; flags: $(grep -o -w 'avx2\|fma\|avx512f\|avx512_bf16\|amx_bf16\|amx_tile' /proc/cpuinfo | sort -u | xargs)"
echo "date: $(date -u +%FT%TZ); fiq $(git -C "$repo" rev-parse --short HEAD); load: $(cut -d' ' -f1-3 /proc/loadavg)"
if ! grep -q -w avx512_bf16 /proc/cpuinfo; then
  echo "this CPU has no AVX512-BF16: fiq's bf16 path cannot run here" >&2
  exit 1
fi

echo; echo "## encoder throughput, ViT-B/32 (random weights), fiq beside PyTorch"
for precision in f32 bf16; do
  "$python" "$repo/tools/python/bench_encoder.py" "$vit" --binary "$bench" --batches 16,64 \
    --images 256 --texts 512 --repeats "$repeats" --precision "$precision" 2>&1 | grep -v -i "warn\|loading weights"
done

echo; echo "## retrieval, built-in default model, synthetic FashionIQ seed 11 ($difficulty, $per_category per category), val split"
data=$work/fashioniq
rm -rf "$data" "$work"/index-* "$work"/*.json
"$bin" synth --out "$data" --per-category "$per_category" --seed 11 --difficulty "$difficulty" >"$work/log" 2>&1
for precision in f32 bf16; do
  start=$(date +%s.%N)
  "$bin" build --fashioniq "$data" --out "$work/index-$precision" --split val --precision "$precision" \
    --quiet 2>>"$work/log"
  echo "build $precision: $(echo "$(date +%s.%N) - $start" | bc) s"
  "$bin" eval --fashioniq "$data" --index "$work/index-$precision" --split val --precision "$precision" \
    --baselines --quiet --json "$work/eval-$precision.json" >/dev/null 2>>"$work/log"
done
# bf16 queries against the f32 index: the index accepts them (same model identity).
"$bin" eval --fashioniq "$data" --index "$work/index-f32" --split val --precision bf16 --baselines --quiet \
  --json "$work/eval-bf16-on-f32.json" >/dev/null 2>>"$work/log"
"$python" - "$work" <<'PY'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
runs = [("f32 index, f32 queries", "eval-f32.json"), ("bf16 index, bf16 queries", "eval-bf16.json"),
        ("f32 index, bf16 queries", "eval-bf16-on-f32.json")]
NAMES = {"Sum": "sum", "Weighted { alpha: 1.0 }": "text only", "Weighted { alpha: 0.0 }": "image only"}
def rows(report):
    # Average R@10 / R@50 (in %) of each fusion, exact search, and IVF agreement with exact.
    out = {}
    for rep in report["reports"]:
        recall = {a["k"]: a["recall"] * 100 for a in rep["exact"]["average"]}
        out[NAMES.get(rep["exact"]["fusion"], rep["exact"]["fusion"])] = (recall[10], recall[50])
    return out
tables = {name: rows(json.loads((work / file).read_text())) for name, file in runs}
keys = [k for k in ["sum", "text only", "image only"] if any(k in t for t in tables.values())]
print("| run | " + " | ".join(f"{k} R@10 / R@50" for k in keys) + " |")
print("|---|" + "---:|" * len(keys))
for name, table in tables.items():
    print(f"| {name} | " + " | ".join(
        f"{table[k][0]:.2f} / {table[k][1]:.2f}" if k in table else "-" for k in keys) + " |")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
