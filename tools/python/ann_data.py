#!/usr/bin/env python3
"""Synthetic catalog for the ANN benchmark: N x D float32 unit vectors whose nearest neighbors are not
trivial, plus held-out queries from the same distribution and their exact top-50 (ground truth).

Generative model (all Gaussian, seeded):
  centers  c_j = normalize(A_j @ B + 0.6 * n_j)   j < C      (C broad clusters whose centers themselves
                                                              lie near a 48-d subspace, so they overlap)
  item     x   = 0.9 * c_z + 0.55 * normalize(w @ U) + 1.0 * e / sqrt(D),  z ~ Zipf-like over C
           with w ~ N(0, I_64) a shared low-rank component (U: 64 x D), e ~ N(0, I_D) isotropic noise
  then x /= |x|.
Queries are fresh draws of the same model (not in the catalog).

Writes base.npy, queries.npy, gt_ids.npy (int64, Q x 50), gt_scores.npy, and prints the distribution of
exact-search scores (top-1 / top-10 / top-50 / random pairs).
"""
import argparse
import os
import time

import numpy as np


def draw(rng, n, centers, weights, U, dim):
    z = rng.choice(len(centers), size=n, p=weights)
    low = rng.standard_normal((n, U.shape[0]), dtype=np.float32) @ U
    low /= np.linalg.norm(low, axis=1, keepdims=True)
    x = 0.9 * centers[z] + 0.55 * low + rng.standard_normal((n, dim), dtype=np.float32) / np.sqrt(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/work/bench-data")
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("-d", type=int, default=512)
    ap.add_argument("-q", type=int, default=1000)
    ap.add_argument("--clusters", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20261127)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    d = args.d
    B = rng.standard_normal((48, d), dtype=np.float32)
    centers = rng.standard_normal((args.clusters, 48), dtype=np.float32) @ B / np.sqrt(48)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    centers += 0.6 * rng.standard_normal((args.clusters, d), dtype=np.float32) / np.sqrt(d)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    weights = 1.0 / np.arange(1, args.clusters + 1) ** 0.5
    weights /= weights.sum()
    U = rng.standard_normal((64, d), dtype=np.float32)

    t = time.time()
    base = np.lib.format.open_memmap(os.path.join(args.out, "base.npy"), mode="w+", dtype=np.float32, shape=(args.n, d))
    for s in range(0, args.n, 100_000):
        e = min(s + 100_000, args.n)
        base[s:e] = draw(rng, e - s, centers, weights, U, d)
    base.flush()
    queries = draw(rng, args.q, centers, weights, U, d)
    np.save(os.path.join(args.out, "queries.npy"), queries)
    print(f"generated {args.n} x {d} + {args.q} queries in {time.time() - t:.1f} s")

    import faiss

    t = time.time()
    k = 50
    scores = np.full((args.q, k), -np.inf, dtype=np.float32)
    ids = np.full((args.q, k), -1, dtype=np.int64)
    for s in range(0, args.n, 200_000):
        e = min(s + 200_000, args.n)
        flat = faiss.IndexFlatIP(d)
        flat.add(np.ascontiguousarray(base[s:e]))
        D, I = flat.search(queries, k)
        D_all = np.concatenate([scores, D], axis=1)
        I_all = np.concatenate([ids, I + s], axis=1)
        order = np.argsort(-D_all, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(D_all, order, axis=1)
        ids = np.take_along_axis(I_all, order, axis=1)
    np.save(os.path.join(args.out, "gt_ids.npy"), ids)
    np.save(os.path.join(args.out, "gt_scores.npy"), scores)
    print(f"exact top-{k} of {args.q} queries in {time.time() - t:.1f} s")
    pairs = rng.integers(0, args.n, size=(20_000, 2))
    rand = np.einsum("ij,ij->i", base[np.sort(pairs[:, 0])], base[np.sort(pairs[:, 1])])
    pct = [1, 50, 99]
    for name, v in [("top-1", scores[:, 0]), ("top-10", scores[:, 9]), ("top-50", scores[:, 49]), ("random pair", rand)]:
        q = np.percentile(v, pct)
        print(f"score {name:>11}: p1 {q[0]:.3f}  p50 {q[1]:.3f}  p99 {q[2]:.3f}")
    gap = scores[:, 9] - scores[:, 10] if k > 10 else None
    print(f"median gap between 10th and 11th exact score: {np.median(gap):.4f}")


if __name__ == "__main__":
    main()
