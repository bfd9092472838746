#!/usr/bin/env bash
# Issue 2's benchmark: open time and exact top-10 throughput of fiq on 1,000,000 x 512 f32 vectors, beside
# the faiss Python wheel's IndexFlatIP on the same vectors and queries, in the same run.
#
#   tools/bench/exact.sh [ROWS] [DIM] [QUERIES]        (defaults 1000000 512 1000)
#
# FIQ_BIN: the fiq-index binary to measure (default: built here with `cargo build --release`).
# ROUNDS: fiq and faiss alternate this many times (default 3); the ratio is reported per round, so that
# the load of a shared machine hits both alike.
# Needs python3 with numpy and faiss-cpu; makes a throwaway virtualenv in $BENCH_DIR/venv if missing.
# Data and the index go to $BENCH_DIR (default /tmp/fiq-bench-exact, about 4.5 GiB).
set -euo pipefail
rows=${1:-1000000}; dim=${2:-512}; nq=${3:-1000}
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/../.." && pwd)
work=${BENCH_DIR:-/tmp/fiq-bench-exact}; mkdir -p "$work"
venv=$work/venv
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; "$venv/bin/pip" install -q numpy faiss-cpu; fi
py=$venv/bin/python
threads=$(nproc)
export OMP_NUM_THREADS=$threads RAYON_NUM_THREADS=$threads

if [ ! -f "$work/x-$rows-$dim.npy" ]; then
  "$py" - "$work" "$rows" "$dim" "$nq" <<'PY'
import sys, numpy as np
work, rows, dim, nq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(7)
# Not blobs: a low-rank component shared by all rows plus isotropic noise, so neighbors are spread out.
basis = rng.standard_normal((64, dim), dtype=np.float32)
x = np.empty((rows, dim), dtype=np.float32)
for s in range(0, rows, 100000):
    n = min(100000, rows - s)
    x[s:s+n] = rng.standard_normal((n, 64), dtype=np.float32) @ basis * 0.15 + rng.standard_normal((n, dim), dtype=np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
np.save(f"{work}/x-{rows}-{dim}.npy", x)
q = x[rng.choice(rows, nq, replace=False)] + 0.05 * rng.standard_normal((nq, dim), dtype=np.float32)
np.save(f"{work}/q-{nq}-{dim}.npy", q.astype(np.float32))
with open(f"{work}/keys-{rows}.txt", "w") as f:
    f.write("".join(f"item{i:07d}\n" for i in range(rows)))
PY
fi
if [ -n "${FIQ_BIN:-}" ]; then
  bin=$FIQ_BIN
else
  cargo build --release -q -p fiq-tools --manifest-path "$repo/Cargo.toml"
  bin=$repo/target/release/fiq-index
fi
if [ ! -f "$work/index-$rows-$dim/MANIFEST" ]; then
  rm -rf "$work/index-$rows-$dim"
  "$bin" import --vectors "$work/x-$rows-$dim.npy" --keys "$work/keys-$rows.txt" --out "$work/index-$rows-$dim"
fi
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $(date -u +%F)"
qps() { grep -o '= [0-9.]* queries/s' | awk '{print $2}'; }
for round in $(seq "${ROUNDS:-3}"); do
  fiq_out=$("$bin" bench exact "$work/index-$rows-$dim" --queries "$work/q-$nq-$dim.npy" -k 10 --repeat 3 --ids-out "$work/fiq-ids.jsonl")
  faiss_out=$("$py" "$here/../python/exact_faiss.py" "$work/x-$rows-$dim.npy" "$work/q-$nq-$dim.npy" 10 3 "$work/faiss-ids.jsonl")
  echo "round $round"
  echo "$fiq_out"
  echo "$faiss_out"
  f=$(echo "$fiq_out" | qps); w=$(echo "$faiss_out" | qps)
  echo "| round $round: fiq / faiss queries/s | $f / $w = $(awk -v f="$f" -v w="$w" 'BEGIN{printf "%.2f", f/w}') |"
done
"$py" - "$work/fiq-ids.jsonl" "$work/faiss-ids.jsonl" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
same = sum(len(set(x) & set(y)) for x, y in zip(a, b)) / sum(len(y) for y in b)
print(f"| top-10 overlap fiq vs faiss | {same:.4f} |")
PY
