"""Milvus query QPS and recall at a given nprobe, through pymilvus, against fiq's exact neighbors.

Used by tools/bench/milvus_bench.sh's fallback measurement (BENCHMARKS.md, "Milvus beside fiq's local
IVF"): same queries, same exact top-50 (`fiq-index eval-ann --exact-cache` JSON: [[row id, score], ...]
per query; row id i is line i of the keys file), same search settings as fiq's client (IP, nprobe,
Strong consistency), one query per call and then batches.

    python milvus_query_bench.py --port 19530 --collection bench --queries queries.npy \
        --exact exact.json --keys keys.txt --nprobe 4 [--batch 100] [--json out.json]
"""
import argparse
import json
import time

import numpy as np
from pymilvus import Collection, connections, utility


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=19530)
    p.add_argument("--collection", default="bench")
    p.add_argument("--queries", required=True)
    p.add_argument("--exact", required=True)
    p.add_argument("--keys", required=True)
    p.add_argument("--nprobe", type=int, required=True)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--consistency", default="Strong", help="Strong (fiq's client) or Bounded")
    p.add_argument("--limit", type=int, default=0, help="use the first N queries only")
    p.add_argument("--json")
    a = p.parse_args()
    connections.connect(host="127.0.0.1", port=str(a.port))
    segments = utility.get_query_segment_info(a.collection)
    rows = sum(s.num_rows for s in segments)
    indexed = sum(s.num_rows for s in segments if s.index_name or s.indexID)
    print(f"query nodes hold {len(segments)} segments, {rows} rows, {indexed} served through an index")
    coll = Collection(a.collection)
    coll.load()
    q = np.load(a.queries).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    keys = open(a.keys).read().split("\n")
    exact = [[keys[i] for i, _ in row] for row in json.load(open(a.exact))]
    if a.limit:
        q, exact = q[: a.limit], exact[: a.limit]
    params = {"metric_type": "IP", "params": {"nprobe": a.nprobe}}

    def search(vectors, k):
        res = coll.search(vectors.tolist(), "vector", params, limit=k, consistency_level=a.consistency)
        return [[hit.id for hit in hits] for hits in res]

    def recall(found, k):
        hit = sum(len(set(f[:k]) & set(e[:k])) for f, e in zip(found, exact))
        return hit / sum(min(k, len(e)) for e in exact)

    search(q[:10], 10)  # warm up
    lat = []
    found10 = []
    t0 = time.perf_counter()
    for v in q:
        s = time.perf_counter()
        found10.extend(search(v[None, :], 10))
        lat.append((time.perf_counter() - s) * 1e3)
    single = len(q) / (time.perf_counter() - t0)
    blat = []
    t0 = time.perf_counter()
    for i in range(0, len(q), a.batch):
        s = time.perf_counter()
        search(q[i : i + a.batch], 10)
        blat.append((time.perf_counter() - s) * 1e3)
    batch = len(q) / (time.perf_counter() - t0)
    found50 = []
    for i in range(0, len(q), a.batch):
        found50.extend(search(q[i : i + a.batch], 50))
    lat.sort()
    blat.sort()
    out = {
        "consistency": a.consistency,
        "nprobe": a.nprobe,
        "rows": rows,
        "indexed_rows": indexed,
        "queries": len(q),
        "recall_at_10": recall(found10, 10),
        "recall_at_50": recall(found50, 50),
        "single_qps": single,
        "single_p50_ms": lat[len(lat) // 2],
        "single_p99_ms": lat[int(len(lat) * 0.99) - 1],
        "batch_size": a.batch,
        "batch_qps": batch,
        "batch_p50_ms": blat[len(blat) // 2],
    }
    print(json.dumps(out, indent=1))
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
