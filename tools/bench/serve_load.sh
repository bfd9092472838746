#!/usr/bin/env bash
# The load figure of `fiq-index serve` (issue 16): requests/s and latency percentiles of POST /query with
# text queries and with composed queries (a reference key + a text) on the synthetic 15k catalog, N
# concurrent clients on loopback.
#
#   tools/bench/serve_load.sh FIQ_BIN [SECONDS] [CLIENTS]
#
# FIQ_BIN is a fiq-index binary; fiq-load is taken from the same directory. The catalog is
# pipeline_15k.sh's (synth --per-category 25000 --seed 2027, val split, built-in model), built here
# under $WORK unless it is already there. SERVE_ARGS adds flags to `serve` (SERVE_ARGS="--max-batch 1":
# every query alone, the batching's baseline).
set -euo pipefail
bin=$1
seconds=${2:-20}
clients=${3:-8}
load=$(dirname "$bin")/fiq-load
work=${WORK:-/tmp/fiq-bench-15k}
seed=${SEED:-2027}
if [ ! -e "$work/index/MANIFEST" ] && [ ! -d "$work/index" ]; then
  mkdir -p "$work"
  "$bin" synth --out "$work/fashioniq" --per-category 25000 --seed "$seed"
  "$bin" build --fashioniq "$work/fashioniq" --split val --out "$work/index" --quiet
fi
echo "machine: $(lscpu | awk -F: '/Model name/{gsub(/^ +/, "", $2); print $2; exit}'), $(nproc) cores; $(date -u +%FT%TZ)"
echo "flags: $(lscpu | awk -F: '/Flags/{print $2}' | tr ' ' '\n' | grep -E '^(avx2|avx512f|fma|sse4_2)$' | xargs)"
echo "threads: OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset}"
echo "fiq: $("$bin" --version); $("$bin" info "$work/index" | head -2 | tr '\n' ' ')"
# shellcheck disable=SC2086
"$bin" serve "$work/index" --addr 127.0.0.1:0 ${SERVE_ARGS:-} >"$work/serve.out" 2>"$work/serve.err" &
server=$!
trap 'kill -TERM $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q http:// "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's|.*http://||p' "$work/serve.out" | head -1)
echo "server: $addr (pid $server), flags: ${SERVE_ARGS:-none}"
for kind in text composed; do
  echo "load average before $kind: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$load" --addr "$addr" --clients "$clients" --seconds "$seconds" --kind "$kind" --json
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
curl -s "http://$addr/metrics" 2>/dev/null | grep -E '^fiq_query_(batches_total|batched_total|largest_batch)' || true
kill -TERM $server
wait $server && echo "server stopped cleanly on SIGTERM"
trap - EXIT
