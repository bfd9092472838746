#!/usr/bin/env bash
# The full crash drill: 1,000 SIGKILLs of fiq-index during build, add, remove and compact, then 200
# damaged copies (bit flips, truncations, zeroed pages). Prints one JSON line per operation and one for
# the damage; RELIABILITY.md holds the measured table. Usage: tools/crash_drill.sh [extra crash-drill flags]
set -euo pipefail
cd "$(dirname "$0")/.."
# The dev profile: fiq and every dependency are optimized there too (Cargo.toml), and it shares the
# build that `cargo test` made.
cargo build -p fiq-tools --bins
exec target/debug/crash-drill --kills 1000 --damages 200 "$@"
