"""Peer for `fiq-index bench exact`: the faiss Python wheel's IndexFlatIP on the same vectors and queries.

Usage: python exact_faiss.py VECTORS.npy QUERIES.npy K REPEAT [IDS_OUT]
Prints one table row with the median time and queries/s. Threads: faiss uses OpenMP; set OMP_NUM_THREADS.
"""
import json
import sys
import time

import faiss
import numpy as np

vectors_path, queries_path, k, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ids_out = sys.argv[5] if len(sys.argv) > 5 else None

# Loaded whole (not memory-mapped): normalize_L2 writes in place, and a read-only map would crash it.
xb = np.ascontiguousarray(np.load(vectors_path), dtype=np.float32)
xq = np.load(queries_path).astype(np.float32)
# fiq stores unit vectors; give faiss the same ones.
faiss.normalize_L2(xb)
faiss.normalize_L2(xq)
index = faiss.IndexFlatIP(xb.shape[1])
index.add(xb)
times = []
for _ in range(repeat):
    t = time.perf_counter()
    _, ids = index.search(xq, k)
    times.append(time.perf_counter() - t)
times.sort()
median = times[len(times) // 2]
print(f"| faiss {faiss.__version__} IndexFlatIP top-{k} for {len(xq)} queries, median of {repeat} | "
      f"{median:.3f} s = {len(xq) / median:.1f} queries/s ({faiss.omp_get_max_threads()} threads) |")
if ids_out:
    with open(ids_out, "w") as f:
        for row in ids:
            f.write(json.dumps([int(i) for i in row]) + "\n")
