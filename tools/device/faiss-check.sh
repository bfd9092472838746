#!/usr/bin/env bash
# Device check for fiq's FAISS on a GPU machine (tools/device/check.sh runs it). Builds nothing: that
# machine has no Rust toolchain; tools/device/bundle.sh builds the binaries it runs. It reports what the
# machine has, runs the x86-64 `fiq-index` carried from the development machine (CPU FAISS, AVX2 build)
# end to end on a tiny generated catalog, and runs a `faiss-gpu` build only if one was carried.
#
#   tools/device/faiss-check.sh [FIQ_BIN] [FIQ_GPU_BIN]
#
# Exit status: 0 when every check that could run passed; 1 when one failed. Lines starting with
# "UNVERIFIED" name what could not be checked.
set -uo pipefail
FIQ_BIN=${1:-target/debug/fiq-index}
FIQ_GPU_BIN=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0

echo "== machine"
uname -m; grep -m1 "model name" /proc/cpuinfo
for f in avx2 fma f16c avx512f; do grep -qw "$f" /proc/cpuinfo && echo "cpu has $f" || echo "cpu lacks $f"; done
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
else
  echo "no nvidia-smi"
fi
command -v nvcc >/dev/null && nvcc --version | tail -1 || echo "no nvcc (CUDA toolkit) on PATH"
ls -d /usr/local/cuda* 2>/dev/null || echo "no /usr/local/cuda*"

echo "== CPU FAISS (carried binary: $FIQ_BIN)"
if [ ! -x "$FIQ_BIN" ]; then
  echo "FAIL: $FIQ_BIN missing; build here with: cargo build -p fiq-tools, then carry target/debug/fiq-index"
  exit 1
fi
# A tiny catalog as .npy without numpy: header + little-endian f32 rows from awk, normalized.
python3 - "$work/base.npy" "$work/keys.txt" <<'PY' 2>/dev/null || { echo "UNVERIFIED: no python3 to write the test catalog"; exit 0; }
import math, random, struct, sys
random.seed(7)
n, d = 3000, 32
centers = [[random.gauss(0, 1) for _ in range(d)] for _ in range(16)]
rows = []
for i in range(n):
    c = centers[i % 16]
    v = [c[j] + random.gauss(0, 1) for j in range(d)]
    s = math.sqrt(sum(x * x for x in v))
    rows.append([x / s for x in v])
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (n, d)
header += " " * (64 - (10 + len(header) + 1) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    for r in rows:
        f.write(struct.pack("<%df" % d, *r))
with open(sys.argv[2], "w") as f:
    f.write("".join("item%d\n" % i for i in range(n)))
PY
if "$FIQ_BIN" build --vectors "$work/base.npy" --keys "$work/keys.txt" --ivf 32 --out "$work/ivf" \
   && "$FIQ_BIN" tune "$work/ivf" --target-recall 0.95 -k 10 --num-queries 200 \
   && "$FIQ_BIN" eval-ann "$work/ivf" --num-queries 200 --nprobe 1,8,32; then
  echo "PASS: CPU FAISS build, tune, eval-ann on this machine"
else
  echo "FAIL: CPU FAISS on this machine"; status=1
fi

echo "== GPU FAISS"
if [ -n "$FIQ_GPU_BIN" ] && [ -x "$FIQ_GPU_BIN" ]; then
  if "$FIQ_GPU_BIN" build --vectors "$work/base.npy" --keys "$work/keys.txt" --ivf 32 --gpu 0 --out "$work/ivf-gpu" \
     && "$FIQ_GPU_BIN" eval-ann "$work/ivf-gpu" --num-queries 200 --nprobe 32; then
    echo "PASS: GPU k-means training and add, CPU search"
  else
    echo "FAIL: GPU FAISS"; status=1
  fi
else
  echo "UNVERIFIED: no faiss-gpu build of fiq-index was carried (tools/device/bundle.sh faiss-gpu makes"
  echo "            one: about 30 minutes of FAISS CUDA compilation on 2 cores)"
fi
exit $status
