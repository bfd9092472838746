#!/usr/bin/env python3
"""The composed query of `fiq-index bench query`, done the Python way, one query at a time: transformers'
CLIP tokenizer and text tower, the reference's stored vector, a normalized sum, and the faiss wheel's IVF
search of the same FAISS file at the same nprobe, then keys out. Same queries (from fiq's --json output),
same threads.

    python3 tools/python/query_latency.py --model DIR --faiss FILE --vectors base.npy --keys keys.txt \
        --queries fiq.json --nprobe N [-k 10] [--warmup 20]

Prints the same table as fiq (p50/p99 ms by stage) and writes --json.
"""
import argparse
import json
import time

import faiss
import numpy as np
import torch
from transformers import CLIPTextModelWithProjection, CLIPTokenizerFast


def percentile(times, p):
    times = sorted(times)
    rank = max(1, min(len(times), int(np.ceil(p / 100 * len(times)))))
    return times[rank - 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--faiss", required=True)
    ap.add_argument("--vectors", required=True)
    ap.add_argument("--keys", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--nprobe", type=int, required=True)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--json")
    args = ap.parse_args()

    torch.set_grad_enabled(False)
    tokenizer = CLIPTokenizerFast(tokenizer_file=f"{args.model}/tokenizer.json")
    model = CLIPTextModelWithProjection.from_pretrained(args.model).eval()
    index = faiss.read_index(args.faiss)
    faiss.extract_index_ivf(index).nprobe = args.nprobe
    vectors = np.load(args.vectors, mmap_mode="r")
    keys = [line.rstrip("\n") for line in open(args.keys)]
    row_of = {key: row for row, key in enumerate(keys)}
    queries = json.load(open(args.queries))["queries"]

    def encode(text):
        # Unpadded, as a serving system would run one query.
        tokens = tokenizer([text], return_tensors="pt", truncation=True, max_length=77)
        out = model(**tokens).text_embeds[0].numpy()
        return out / np.linalg.norm(out)

    def search(vector):
        scores, ids = index.search(vector[None, :].astype(np.float32), args.k)
        return scores, ids

    warm = queries[: args.warmup]
    for q in warm:
        search(encode(q["text"]))
    timings = {name: [] for name in ["text_only_ms", "composed_ms", "text_encode_ms", "fuse_ms", "search_ms", "keys_ms"]}
    for q in queries:
        started = time.perf_counter()
        _, ids = search(encode(q["text"]))
        found = [keys[i] for i in ids[0] if i >= 0]
        timings["text_only_ms"].append((time.perf_counter() - started) * 1e3)

        started = time.perf_counter()
        t0 = time.perf_counter()
        text = encode(q["text"])
        t1 = time.perf_counter()
        image = np.asarray(vectors[row_of[q["ref"]]], dtype=np.float32)
        fused = image / np.linalg.norm(image) + text
        fused /= np.linalg.norm(fused)
        t2 = time.perf_counter()
        _, ids = search(fused)
        t3 = time.perf_counter()
        found = [keys[i] for i in ids[0] if i >= 0]
        t4 = time.perf_counter()
        timings["composed_ms"].append((t4 - started) * 1e3)
        timings["text_encode_ms"].append((t1 - t0) * 1e3)
        timings["fuse_ms"].append((t2 - t1) * 1e3)
        timings["search_ms"].append((t3 - t2) * 1e3)
        timings["keys_ms"].append((t4 - t3) * 1e3)
        assert len(found) == args.k

    print(f"python: torch {torch.__version__} ({torch.get_num_threads()} threads), faiss {faiss.__version__}, "
          f"{len(queries)} queries of each kind after {len(warm)} warm-up, nprobe {args.nprobe}")
    print("| stage | p50 ms | p99 ms |")
    print("|---|---|---|")
    names = {
        "text_only_ms": "text-only query, end to end",
        "composed_ms": "composed query, end to end",
        "text_encode_ms": "  tokenize + text tower",
        "fuse_ms": "  reference vector + fuse",
        "search_ms": "  search",
        "keys_ms": "  keys out",
    }
    for name, label in names.items():
        print(f"| {label} | {percentile(timings[name], 50):.3f} | {percentile(timings[name], 99):.3f} |")
    if args.json:
        json.dump({"timings": timings}, open(args.json, "w"))


if __name__ == "__main__":
    main()
