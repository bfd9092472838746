#!/usr/bin/env bash
# The hard synthetic level's calibration: zero-shot text-only, image-only and sum fusion of the built-in
# default model on `synth --difficulty hard`, per category, for seeds the model never saw, at two
# catalog sizes (val galleries of 400 and 1,000 images per category). BENCHMARKS.md holds the table.
# Usage: tools/bench/synth_hard_calibration.sh [FIQ_INDEX_BINARY] (default target/release/fiq-index)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release/fiq-index}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for per_category in 2000 5000; do
  for seed in 11 12 13; do
    dir=$work/$per_category-$seed
    "$bin" synth --out "$dir/data" --per-category "$per_category" --seed "$seed" --difficulty hard >/dev/null
    "$bin" build --fashioniq "$dir/data" --out "$dir/index" --split val --quiet >/dev/null 2>&1
    "$bin" eval --fashioniq "$dir/data" --index "$dir/index" --split val --baselines \
      --json "$dir/report.json" >/dev/null 2>&1
    python3 - "$dir/report.json" "$per_category" "$seed" <<'PY'
import json, sys
report, per_category, seed = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
names = {"Sum": "sum", "Weighted { alpha: 1.0 }": "text-only", "Weighted { alpha: 0.0 }": "image-only"}
for entry in report["reports"]:
    exact = entry["exact"]
    cells = [f"{100 * row['at'][0]['recall']:.1f} / {100 * row['at'][1]['recall']:.1f}" for row in exact["rows"]]
    average = exact["average"]
    print(f"| {per_category} | {seed} | {names.get(str(exact['fusion']), exact['fusion'])} | "
          + " | ".join(cells)
          + f" | **{100 * average[0]['recall']:.1f} / {100 * average[1]['recall']:.1f}** |")
PY
  done
done
