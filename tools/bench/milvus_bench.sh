#!/usr/bin/env bash
# fiq's local IVF beside a Milvus collection holding the same 1M vectors, in one run on one machine:
# insert throughput from fiq's store into Milvus (`fiq-index export`), then query QPS and recall@10/50
# against fiq's exact search at fiq's tuned nprobe (`fiq-index eval-ann`, local and through Milvus).
#
#   tools/bench/milvus_bench.sh FIQ_BIN MILVUS_SERVER RUN_NAME
#
# MILVUS_SERVER: the PyPI `milvus` package's `milvus-server` wrapper (Milvus 2.3.5 standalone).
# Environment:
#   DATA     base.npy (1M x 512 f32, from tools/python/ann_data.py), keys.txt, queries.npy (default
#            /work/bench-data)
#   FACTORY  the local index (default IVF1024,Flat; Milvus gets IVF_FLAT with the same nlist)
#   PORT     Milvus's proxy port (default 19530); its metrics port 9091 and etcd's 2379/2380 are fixed
#   KEEP=1   keep the Milvus data directory and the local index afterwards
#   REUSE=1  reuse the Milvus data directory of an earlier run of this RUN_NAME (no export)
# Results: $DATA/milvus-RUN_NAME/{export,local,milvus-strong,milvus-bounded,local-after}.{txt,json}.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 FIQ_BIN MILVUS_SERVER RUN_NAME" >&2; exit 2; }
fiq=$1
server=$2
DATA=${DATA:-/work/bench-data}
FACTORY=${FACTORY:-IVF1024,Flat}
PORT=${PORT:-19530}
OUT=$DATA/milvus-$3
mkdir -p "$OUT"
index=$DATA/milvus-index-${FACTORY//,/-}
mdata=$OUT/milvus-data
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ ! -d "$index" ]; then
  # build measures and records the smallest nprobe reaching recall@10 0.95 on held-out queries.
  "$fiq" build --vectors "$DATA/base.npy" --keys "$DATA/keys.txt" --factory "$FACTORY" --out "$index" --quiet
fi

# Milvus standalone in its own process group (the wrapper alone leaves the server running).
[ "${REUSE:-0}" = 1 ] || rm -rf "$mdata"
setsid "$server" --data "$mdata" --proxy-port "$PORT" > "$OUT/milvus-server.log" 2>&1 &
group=$!
cleanup() {
  kill -TERM -- "-$group" 2>/dev/null || true
  sleep 5
  kill -KILL -- "-$group" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$mdata"
}
trap cleanup EXIT
for _ in $(seq 120); do
  curl -sf http://127.0.0.1:9091/healthz > /dev/null && break
  sleep 1
done
url=milvus://127.0.0.1:$PORT/bench

if [ "${REUSE:-0}" != 1 ]; then
  echo "== export (insert from the store into Milvus; flush, IVF_FLAT build per segment, load)"
  /usr/bin/time -v "$fiq" export "$index" --to "$url" --quiet --json --milvus-timeout 3600 \
    > "$OUT/export.json" 2> "$OUT/export.txt"
  grep -v '^\s' "$OUT/export.txt" | tail -3
  du -sh "$mdata" | tee -a "$OUT/export.txt"
fi

nprobe=$("$fiq" info "$index" --json | python3 -c 'import json, sys
params = json.load(sys.stdin)["ann_params"]
print((json.loads(params) if isinstance(params, str) else params)["nprobe"])')
queries=(--queries "$DATA/queries.npy" --exact-cache "$OUT/exact.json" --batch 100)
cat "$index"/* > /dev/null   # a warm page cache for the local index
# Local, then Milvus at both consistency levels, then local again: the rows of one run, and the local
# figure bracketing the Milvus ones shows whether the machine's load moved in between.
echo "== fiq local IVF (nprobe $nprobe)"
"$fiq" eval-ann "$index" "${queries[@]}" --nprobe "$nprobe" --json "$OUT/local.json" | tee "$OUT/local.txt"
for consistency in strong bounded; do
  echo "== Milvus (nprobe $nprobe per segment, $consistency consistency)"
  # eval-ann first waits until every segment is served through its IVF index.
  "$fiq" eval-ann "$url" --local "$index" "${queries[@]}" --nprobe "$nprobe" --milvus-timeout 3600 \
    --milvus-consistency "$consistency" --json "$OUT/milvus-$consistency.json" | tee "$OUT/milvus-$consistency.txt"
done
echo "== fiq local IVF again (nprobe $nprobe)"
"$fiq" eval-ann "$index" "${queries[@]}" --nprobe "$nprobe" --json "$OUT/local-after.json" | tee "$OUT/local-after.txt"
echo "Milvus memory (RSS of the server's processes, KiB):"
ps -o rss=,comm= -g "$group" | tee "$OUT/milvus-rss.txt"
[ "${KEEP:-0}" = 1 ] || rm -rf "$index"
