#!/usr/bin/env bash
# ANN benchmark: fiq (`fiq-index build` / `eval-ann`) beside the faiss Python wheel, same data, same
# factory strings, nlist, training-sample size, nprobe values and re-ranking, interleaved in one run.
# fiq's index is a full fiq index (vectors imported into the store, the IVF index committed with it);
# its build time is reported as the IVF build alone (what the wheel does) plus the import; `--no-tune`
# leaves out build's nprobe measurement, which the wheel has no counterpart of.
#
#   tools/bench/ann_bench.sh FIQ_BIN RUN_NAME
#
# Environment:
#   DATA       data and indexes (default /work/bench-data; made by ann_data.py when missing)
#   PY         python with faiss-cpu + numpy (default /work/venv-faiss/bin/python)
#   WHEEL_OPT  FAISS_OPT_LEVEL for the wheel: AVX2 (default) | GENERIC (upper case: the wheel's loader
#              matches "AVX2" exactly and falls back to generic otherwise); match it to how FIQ_BIN's
#              FAISS was compiled for a like-for-like comparison
#   BUILD      1: build both indexes per factory (timed); 0: evaluate the indexes a previous run built
#   FACTORIES  default "IVF1024,Flat IVF1024,SQ8 IVF1024,PQ64np" ("np": no polysemous training, which
#              only serves Hamming pre-filtering and dominates PQ training time)
#   NPROBE     default 8,16,32,64;  TRAIN  training sample (default 65536)
# Results: $DATA/results-RUN_NAME/{fiq,wheel}-<factory>.json, *.log, *.time, and report.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 2 ] || { echo "usage: $0 FIQ_BIN RUN_NAME" >&2; exit 2; }
fiq=$1
DATA=${DATA:-/work/bench-data}
PY=${PY:-/work/venv-faiss/bin/python}
WHEEL_OPT=${WHEEL_OPT:-AVX2}
BUILD=${BUILD:-1}
FACTORIES=${FACTORIES:-"IVF1024,Flat IVF1024,SQ8 IVF1024,PQ64np"}
NPROBE=${NPROBE:-8,16,32,64}
TRAIN=${TRAIN:-65536}
OUT=$DATA/results-$2
mkdir -p "$OUT"

if [ ! -f "$DATA/gt_ids.npy" ]; then
  "$PY" "$here/../python/ann_data.py" --out "$DATA" | tee "$DATA/data.txt"
fi
[ -f "$DATA/keys.txt" ] || seq -f "item%07g" 0 999999 > "$DATA/keys.txt"

timed() { # timed LOG CMD...: output into LOG, wall seconds and peak RSS into LOG.time
  local log=$1; shift
  /usr/bin/time -f "wall_s %e peak_rss_kib %M" -o "$log.time" "$@" > "$log" 2>&1 || { cat "$log"; return 1; }
}

cache=()
"$fiq" eval-ann --help | grep -q -- --exact-cache && cache=(--exact-cache "$DATA/fiq-exact.json")
for factory in $FACTORIES; do
  tag=${factory//,/-}
  if [ "$BUILD" = 1 ]; then
    echo "== $factory: build, fiq"
    rm -rf "$DATA/fiq-$tag"
    timed "$OUT/fiq-$tag-build.log" "$fiq" build --vectors "$DATA/base.npy" --keys "$DATA/keys.txt" \
        --factory "$factory" --train-size "$TRAIN" --no-tune --out "$DATA/fiq-$tag"
    echo "== $factory: build, wheel"
    timed "$OUT/wheel-$tag-build.log" env FAISS_OPT_LEVEL="$WHEEL_OPT" "$PY" "$here/../python/ann_wheel.py" build \
        --data "$DATA" --factory "$factory" --train-size "$TRAIN" --out "$DATA/wheel-$tag.faiss"
  fi
  # Warm page cache for both engines (a serving process, not a cold start): reading the files puts
  # them in the page cache but maps nothing, so resident memory still starts from zero.
  cat "$DATA/base.npy" "$DATA/fiq-$tag"/* "$DATA/wheel-$tag.faiss" > /dev/null
  echo "== $factory: eval, fiq"
  timed "$OUT/fiq-$tag-eval.log" "$fiq" eval-ann "$DATA/fiq-$tag" --queries "$DATA/queries.npy" \
      --nprobe "$NPROBE" --json "$OUT/fiq-$tag.json" "${cache[@]}"
  echo "== $factory: eval, wheel"
  timed "$OUT/wheel-$tag-eval.log" env FAISS_OPT_LEVEL="$WHEEL_OPT" "$PY" "$here/../python/ann_wheel.py" eval \
      --data "$DATA" --factory "$factory" --index "$DATA/wheel-$tag.faiss" --nprobe "$NPROBE" \
      --json "$OUT/wheel-$tag.json"
done
"$PY" "$here/../python/ann_report.py" "$OUT" | tee "$OUT/report.md"
