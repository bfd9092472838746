#!/usr/bin/env bash
# A bounded cargo-fuzz run of every target in fuzz/ (the format's decoders and the opener), each for
# SECONDS (default 60), starting from the seeds kept in fuzz/corpus/seeds/<target>. The working corpus
# goes to a scratch directory so the run leaves the repository as it was; a crash stops with the input
# saved under fuzz/artifacts/<target>/. Prints executions per target (the RELIABILITY.md table).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
toolchain=(+nightly)
rustup toolchain list | grep -q '^nightly' || toolchain=()
export RUSTC_BOOTSTRAP=1 # when only stable is installed, cargo-fuzz's -Z flags need it
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
printf '%-14s %12s %8s\n' target executions seconds
for target in $(cd fuzz && cargo "${toolchain[@]}" fuzz list); do
  mkdir -p "$scratch/$target"
  cp -r "fuzz/corpus/seeds/$target/." "$scratch/$target/" 2>/dev/null || true
  log="$scratch/$target.log"
  if ! (cd fuzz && cargo "${toolchain[@]}" fuzz run "$target" "$scratch/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz target $target failed; the input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | grep -o '[0-9]*')
  printf '%-14s %12s %8s\n' "$target" "${runs:-?}" "$seconds"
done
