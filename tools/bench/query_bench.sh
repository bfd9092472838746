#!/usr/bin/env bash
# Latency of one composed query over 1M vectors: fiq (`fiq-index bench query`) beside the same query done
# in Python (transformers' CLIP text tower + the faiss wheel searching the same FAISS file at the same
# nprobe), in one run, on the same machine and threads.
#
#   tools/bench/query_bench.sh FIQ_BIN RUN_NAME
#
# Environment:
#   DATA     data, model and index (default /work/bench-data): base.npy/keys.txt from ann_data.py (1M x 512),
#            clip-vit-b32-random/ from random_clip.py (ViT-B/32 shapes, random weights: speed only)
#   PY       python with torch, transformers, faiss-cpu, numpy (default /work/venv-ref/bin/python)
#   FACTORY  default IVF1024,Flat;  QUERIES  timed queries of each kind (default 200)
# Results: $DATA/query-RUN_NAME/{fiq,python}.{txt,json}.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 2 ] || { echo "usage: $0 FIQ_BIN RUN_NAME" >&2; exit 2; }
fiq=$1
DATA=${DATA:-/work/bench-data}
PY=${PY:-/work/venv-ref/bin/python}
FACTORY=${FACTORY:-IVF1024,Flat}
QUERIES=${QUERIES:-200}
OUT=$DATA/query-$2
mkdir -p "$OUT"
[ -f "$DATA/base.npy" ] || "$PY" "$here/../python/ann_data.py" --out "$DATA"
[ -f "$DATA/keys.txt" ] || seq -f "item%07g" 0 999999 > "$DATA/keys.txt"
model=$DATA/clip-vit-b32-random
[ -f "$model/model.safetensors" ] || "$PY" "$here/../python/random_clip.py" "$model"
index=$DATA/query-index-${FACTORY//,/-}
if [ ! -d "$index" ]; then
  # build measures and records the smallest nprobe reaching recall@10 0.95 on held-out queries.
  "$fiq" build --vectors "$DATA/base.npy" --keys "$DATA/keys.txt" --factory "$FACTORY" --out "$index" --quiet
fi
nprobe=$("$fiq" info "$index" --json | "$PY" -c 'import json, sys
params = json.load(sys.stdin)["ann_params"]
print((json.loads(params) if isinstance(params, str) else params)["nprobe"])')
faiss_file=$(ls "$index"/ann-* | head -1)
cat "$DATA/base.npy" "$index"/* > /dev/null   # both engines start from a warm page cache
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); flags: $(grep -o -w 'avx2\|fma\|avx512f\|avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | xargs)"
echo "== fiq (nprobe $nprobe)"
"$fiq" bench query "$index" --model "$model" --queries "$QUERIES" --json "$OUT/fiq.json" | tee "$OUT/fiq.txt"
echo "== python"
"$PY" "$here/../python/query_latency.py" --model "$model" --faiss "$faiss_file" --vectors "$DATA/base.npy" \
    --keys "$DATA/keys.txt" --queries "$OUT/fiq.json" --nprobe "$nprobe" --json "$OUT/python.json" | tee "$OUT/python.txt"
