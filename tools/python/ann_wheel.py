#!/usr/bin/env python3
"""The peer for `fiq-index build` / `eval-ann`: the faiss Python wheel doing the same work the same way
(same factory string, training-sample size, add batches, nprobe values, k * rerank_factor candidates
re-scored exactly for compressed codes, single-query and batched timing), printing the same JSON fields.

  ann_wheel.py build --factory IVF1024,Flat --train-size 65536 --out wheel.faiss
  ann_wheel.py eval  --index wheel.faiss --nprobe 8,16,32 --json wheel.json
"""
import argparse
import json
import os
import time

import numpy as np
import faiss

DATA = "/work/bench-data"


def resident():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(rest.split()[0])
    return {"total_kib": fields.get("VmRSS", 0), "anon_kib": fields.get("RssAnon", 0), "file_kib": fields.get("RssFile", 0)}


def build(args):
    base = np.load(os.path.join(args.data, "base.npy"), mmap_mode="r")
    n, d = base.shape
    t0 = time.perf_counter()
    index = faiss.index_factory(d, args.factory, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(args.seed)
    sample = np.sort(rng.choice(n, size=min(args.train_size, n), replace=False))
    index.train(np.ascontiguousarray(base[sample]))
    for s in range(0, n, args.batch):
        index.add(np.ascontiguousarray(base[s : s + args.batch]))
    seconds = time.perf_counter() - t0
    faiss.write_index(index, args.out)
    print(json.dumps({"factory": args.factory, "build_s": seconds, "vectors": n, "dim": d}))


def percentile(ms, p):
    ms = sorted(ms)
    rank = int(np.ceil(p / 100.0 * len(ms)))
    return ms[min(max(rank, 1), len(ms)) - 1]


def eval_(args):
    base = np.load(os.path.join(args.data, "base.npy"), mmap_mode="r")
    queries = np.load(os.path.join(args.data, "queries.npy"))
    gt = np.load(os.path.join(args.data, "gt_ids.npy"))
    nq = len(queries)

    before = resident()
    t0 = time.perf_counter()
    index = faiss.read_index(args.index, faiss.IO_FLAG_MMAP_IFC)
    open_ms = (time.perf_counter() - t0) * 1e3
    after_open = resident()
    t0 = time.perf_counter()
    loaded = faiss.read_index(args.index)
    load_ms = (time.perf_counter() - t0) * 1e3
    del loaded
    ivf = faiss.extract_index_ivf(index)
    exact_codes = isinstance(ivf, faiss.IndexIVFFlat)

    def search(x, k, nprobe):
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        if exact_codes:
            return index.search(x, k, params=params)[1]
        cand = index.search(x, k * args.rerank_factor, params=params)[1]
        valid = cand >= 0
        ids = np.where(valid, cand, 0)
        rows = base[ids.ravel()].reshape(len(x), ids.shape[1], -1)
        scores = np.einsum("nkd,nd->nk", rows, x)
        scores[~valid] = -np.inf
        order = np.lexsort((ids, -scores))[:, :k]
        out = np.take_along_axis(ids, order, axis=1)
        out[~np.take_along_axis(valid, order, axis=1)] = -1
        return out

    def recall(found, k):
        return float(np.mean([len(set(found[i, :k]) & set(gt[i, :k])) / k for i in range(nq)]))

    points = []
    for nprobe in args.nprobe:
        single = []
        found10 = np.empty((nq, 10), dtype=np.int64)
        t_all = time.perf_counter()
        for i in range(nq):
            t = time.perf_counter()
            found10[i] = search(queries[i : i + 1], 10, nprobe)[0]
            single.append((time.perf_counter() - t) * 1e3)
        single_total = time.perf_counter() - t_all
        batch_ms = []
        t_all = time.perf_counter()
        for s in range(0, nq, args.batch):
            t = time.perf_counter()
            search(queries[s : s + args.batch], 10, nprobe)
            batch_ms.append((time.perf_counter() - t) * 1e3)
        batch_total = time.perf_counter() - t_all
        found50 = search(queries, 50, nprobe)
        points.append(
            {
                "nprobe": nprobe,
                "recall_at_10": recall(found10, 10),
                "recall_at_50": recall(found50, 50),
                "single_qps": nq / single_total,
                "single_p50_ms": percentile(single, 50),
                "single_p99_ms": percentile(single, 99),
                "batch_size": args.batch,
                "batch_qps": nq / batch_total,
                "batch_p50_ms": percentile(batch_ms, 50),
                "batch_p99_ms": percentile(batch_ms, 99),
            }
        )
    report = {
        "factory": args.factory,
        "faiss": faiss.__version__ + " " + faiss.get_compile_options().strip(),
        "open_ms": open_ms,
        "load_ms": load_ms,
        "resident_before_open": before,
        "resident_after_open": after_open,
        "resident_after_queries": resident(),
        "points": points,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--factory", required=True)
    b.add_argument("--train-size", type=int, default=65536)
    b.add_argument("--seed", type=int, default=0xF1A55)
    b.add_argument("--batch", type=int, default=65536)
    b.add_argument("--out", required=True)
    e = sub.add_parser("eval")
    e.add_argument("--index", required=True)
    e.add_argument("--factory", default="")
    e.add_argument("--nprobe", type=lambda s: [int(v) for v in s.split(",")], required=True)
    e.add_argument("--batch", type=int, default=100)
    e.add_argument("--rerank-factor", type=int, default=4)
    e.add_argument("--json")
    for p in (b, e):
        p.add_argument("--data", default=DATA)
    args = ap.parse_args()
    build(args) if args.cmd == "build" else eval_(args)


if __name__ == "__main__":
    main()
