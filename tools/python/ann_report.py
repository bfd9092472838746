#!/usr/bin/env python3
"""Turns the JSON and time logs of ann_bench.sh into the markdown tables of BENCHMARKS.md."""
import glob
import json
import os
import sys


def time_of(path):
    try:
        fields = open(path + ".time").read().split()
        return float(fields[1]), int(fields[3])
    except (OSError, IndexError, ValueError):
        return float("nan"), 0


def fiq_ivf_seconds(path):
    """The IVF build time fiq's `build` prints ("IVF index ... in 12.3 s"), without the import."""
    try:
        for line in open(path):
            if "IVF index" in line and " in " in line:
                return float(line.split(" in ")[1].split(" s")[0])
    except (OSError, ValueError, IndexError):
        pass
    return float("nan")


def first_reaching(points, target=0.95):
    ok = [p for p in points if p["recall_at_10"] >= target]
    return min(ok, key=lambda p: p["nprobe"]) if ok else None


def main(out):
    rows = []
    print("| factory | engine | build s (IVF; whole command) | open ms | RSS after open (anon / file) MiB | RSS after queries (anon / file) MiB |")
    print("|---|---|---:|---:|---:|---:|")
    for fiq_json in sorted(glob.glob(os.path.join(out, "fiq-*.json"))):
        tag = os.path.basename(fiq_json)[4:-5]
        wheel_json = os.path.join(out, f"wheel-{tag}.json")
        if not os.path.exists(wheel_json):
            continue
        fiq, wheel = json.load(open(fiq_json)), json.load(open(wheel_json))
        fb, _ = time_of(os.path.join(out, f"fiq-{tag}-build.log"))
        fivf = fiq_ivf_seconds(os.path.join(out, f"fiq-{tag}-build.log"))
        wb, _ = time_of(os.path.join(out, f"wheel-{tag}-build.log"))
        fb_text, wb_text = f"{fivf:.0f}; {fb:.0f}", f"{wb:.0f}"
        for name, r, b in ((f"fiq ({fiq['faiss_simd']})", fiq, fb_text), (f"wheel ({wheel['faiss']})", wheel, wb_text)):
            a, q = r["resident_after_open"], r["resident_after_queries"]
            b0 = r["resident_before_open"]
            print(
                f"| {fiq['factory']} | {name} | {b} | {r['open_ms']:.1f} | "
                f"+{(a['anon_kib'] - b0['anon_kib']) / 1024:.1f} / +{(a['file_kib'] - b0['file_kib']) / 1024:.1f} | "
                f"{q['anon_kib'] / 1024:.0f} / {q['file_kib'] / 1024:.0f} |"
            )
        rows.append((fiq["factory"], fiq, wheel))
    print()
    print("| factory | nprobe | engine | R@10 | R@50 | 1-query QPS | p50 ms | p99 ms | batch QPS | batch p50 ms | batch p99 ms |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for factory, fiq, wheel in rows:
        for pf, pw in zip(fiq["points"], wheel["points"]):
            for name, p in (("fiq", pf), ("wheel", pw)):
                print(
                    f"| {factory} | {p['nprobe']} | {name} | {p['recall_at_10']:.4f} | {p['recall_at_50']:.4f} | "
                    f"{p['single_qps']:.0f} | {p['single_p50_ms']:.2f} | {p['single_p99_ms']:.2f} | "
                    f"{p['batch_qps']:.0f} | {p['batch_p50_ms']:.1f} | {p['batch_p99_ms']:.1f} |"
                )
    print()
    print("| factory | nprobe for R@10 >= 0.95 (fiq / wheel) | 1-query QPS fiq / wheel | ratio | batch QPS fiq / wheel | ratio |")
    print("|---|---|---|---:|---|---:|")
    for factory, fiq, wheel in rows:
        f, w = first_reaching(fiq["points"]), first_reaching(wheel["points"])
        if not f or not w:
            print(f"| {factory} | not reached in the sweep | | | | |")
            continue
        # Compare at the same nprobe: the larger of the two, so both reach the target.
        n = max(f["nprobe"], w["nprobe"])
        f = next(p for p in fiq["points"] if p["nprobe"] == n)
        w = next(p for p in wheel["points"] if p["nprobe"] == n)
        print(
            f"| {factory} | {n} (R@10 {f['recall_at_10']:.3f} / {w['recall_at_10']:.3f}) | "
            f"{f['single_qps']:.0f} / {w['single_qps']:.0f} | {f['single_qps'] / w['single_qps']:.2f} | "
            f"{f['batch_qps']:.0f} / {w['batch_qps']:.0f} | {f['batch_qps'] / w['batch_qps']:.2f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/bench-data/results")
