#!/usr/bin/env bash
# ANN benchmark: fiq (`fiq-index build` / `eval-ann`) beside the faiss Python wheel, same data, same
# factory strings, nlist, training-sample size, nprobe values, re-ranking, in one run.
#
#   tools/bench/ann_bench.sh FIQ_BIN [FIQ_BIN_2 ...]
#
# FIQ_BIN: fiq-index binaries to compare (e.g. one with FAISS built generic, one with AVX2); the first is
# measured on every factory, the others on the indexes fiq built, for $SIMD_FACTORIES (the SIMD comparison).
# Environment: DATA (default /work/bench-data), PY (python with faiss-cpu + numpy, default
# /work/venv-faiss/bin/python), FACTORIES (default "IVF1024,Flat IVF1024,SQ8 IVF1024,PQ64np"; "np":
# no polysemous training, which only serves Hamming pre-filtering and dominates PQ training time),
# NPROBE (default 4,8,16,32,64), TRAIN (default 65536).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DATA=${DATA:-/work/bench-data}
PY=${PY:-/work/venv-faiss/bin/python}
FACTORIES=${FACTORIES:-"IVF1024,Flat IVF1024,SQ8 IVF1024,PQ64np"}
NPROBE=${NPROBE:-4,8,16,32,64}
TRAIN=${TRAIN:-65536}
SIMD_FACTORIES=${SIMD_FACTORIES:-"IVF1024,Flat IVF1024,SQ8"}
OUT=$DATA/results
mkdir -p "$OUT"
[ $# -ge 1 ] || { echo "usage: $0 FIQ_BIN [FIQ_BIN_2 ...]" >&2; exit 2; }

if [ ! -f "$DATA/gt_ids.npy" ]; then
  "$PY" "$here/ann_data.py" --out "$DATA" | tee "$OUT/data.txt"
fi

timed() { # timed LOG CMD...: wall seconds and peak RSS of CMD into LOG
  local log=$1; shift
  /usr/bin/time -f "wall_s %e peak_rss_kib %M" -o "$log.time" "$@" > "$log" 2>&1 || { cat "$log"; return 1; }
}

fiq=$1
for factory in $FACTORIES; do
  tag=${factory//,/-}
  echo "== $factory: fiq"
  timed "$OUT/fiq-$tag-build.log" "$fiq" build --vectors "$DATA/base.npy" --factory "$factory" \
      --train-size "$TRAIN" "$DATA/fiq-$tag"
  timed "$OUT/fiq-$tag-eval.log" "$fiq" eval-ann "$DATA/fiq-$tag" --queries "$DATA/queries.npy" \
      --nprobe "$NPROBE" --json "$OUT/fiq-$tag.json"
  echo "== $factory: wheel"
  timed "$OUT/wheel-$tag-build.log" "$PY" "$here/ann_wheel.py" build --data "$DATA" --factory "$factory" \
      --train-size "$TRAIN" --out "$DATA/wheel-$tag.faiss"
  timed "$OUT/wheel-$tag-eval.log" "$PY" "$here/ann_wheel.py" eval --data "$DATA" --factory "$factory" \
      --index "$DATA/wheel-$tag.faiss" --nprobe "$NPROBE" --json "$OUT/wheel-$tag.json"
done

shift
i=2
for other in "$@"; do
  for factory in $SIMD_FACTORIES; do
    tag=${factory//,/-}
    echo "== $factory: fiq binary $i ($other), same index"
    timed "$OUT/fiq$i-$tag-eval.log" "$other" eval-ann "$DATA/fiq-$tag" --queries "$DATA/queries.npy" \
        --nprobe "$NPROBE" --json "$OUT/fiq$i-$tag.json"
  done
  i=$((i + 1))
done

"$PY" "$here/ann_report.py" "$OUT"
