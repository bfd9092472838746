#!/usr/bin/env bash
# The main job on a fresh machine: install build dependencies, build fiq, generate a synthetic FashionIQ
# catalog, encode it into an index and print the evaluation table.
#
# With no argument it uses fiq's built-in default model (models/fiq-default: a small CLIP trained from
# scratch by fiq on synthetic garments of another seed, see tools/train_default_model.sh), so nothing is
# downloaded and the numbers are real retrieval on images that model never saw. Pass a Hugging Face CLIP
# directory as the first argument to use that model instead.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
model_args=()
if [ $# -gt 0 ]; then model_args=(--model "$1"); fi
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
"$bin" synth --out "$work/fashioniq" --per-category 2000 --seed 1
"$bin" build --fashioniq "$work/fashioniq" ${model_args[@]+"${model_args[@]}"} --out "$work/index" --split val
"$bin" eval --fashioniq "$work/fashioniq" ${model_args[@]+"${model_args[@]}"} --index "$work/index" --split val --baselines --json "$work/report.json"
echo "report: $work/report.json"

# Ask the index a composed query: the first dress of the val gallery, "but red and sleeveless".
ref=$(grep -o '"[^"]*"' "$work/fashioniq/image_splits/split.dress.val.json" | head -1 | tr -d '"')
echo
echo "fiq-index query $work/index --ref $ref --text \"is red and sleeveless\" --category dress -k 5"
"$bin" query "$work/index" ${model_args[@]+"${model_args[@]}"} --ref "$ref" --text "is red and sleeveless" --category dress -k 5
