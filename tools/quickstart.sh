#!/usr/bin/env bash
# The main job on a fresh machine: install build dependencies, build fiq, generate a synthetic FashionIQ
# catalog, encode it into an index and print the evaluation table.
#
# Until fiq ships a trained default model, this uses the tiny random-weight CLIP test fixture
# (tests/fixtures/clip-tiny): the pipeline runs end to end, but its retrieval numbers are meaningless.
# Pass a real Hugging Face CLIP directory as the first argument for real numbers.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
model=${1:-$repo/tests/fixtures/clip-tiny}
work=${FIQ_QUICKSTART_DIR:-$repo/target/quickstart}

packages=(cmake g++ make libopenblas-dev liblapack-dev pkg-config)
missing=(); for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

cargo build --release -p fiq-tools --manifest-path "$repo/Cargo.toml"
bin=$repo/target/release/fiq-index
rm -rf "$work"; mkdir -p "$work"
"$bin" synth --out "$work/fashioniq" --per-category 300 --seed 1
"$bin" build --fashioniq "$work/fashioniq" --model "$model" --out "$work/index" --split val
"$bin" eval --fashioniq "$work/fashioniq" --model "$model" --index "$work/index" --split val --baselines --json "$work/report.json"
echo "report: $work/report.json"
