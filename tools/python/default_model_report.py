#!/usr/bin/env python3
"""Markdown tables from `fiq-index eval --json` reports: R@10/R@50/P@10/P@50 per category and average.

    python3 tools/python/default_model_report.py LABEL=REPORT.json[:INDEX] ...

INDEX picks one report of a file holding several (eval --baselines writes three). Standard library only.
"""

import json
import sys

def value(at, name, k):
    metric = next(m for m in at if m["k"] == k)
    return 100 * (metric["recall"] if name == "R" else metric["precision"])


def main():
    rows = []
    for argument in sys.argv[1:]:
        label, spec = argument.split("=", 1)
        path, _, position = spec.partition(":")
        document = json.load(open(path))
        # `fiq-index eval --json` writes {"model", "dataset", "reports": [...]} (older runs: the list).
        reports = document["reports"] if isinstance(document, dict) else document
        report = reports[int(position or 0)]
        rows.append((label, report))
    groups = [row["category"] for row in rows[0][1]["rows"]] + ["average"]
    for name, title in [("R", "Recall@K (%)"), ("P", "Precision@K (%)")]:
        print(f"{title}\n")
        print("| fusion | " + " | ".join(f"{g} {name}@{k}" for g in groups for k in (10, 50)) + " |")
        print("|---|" + "---:|" * (2 * len(groups)))
        for label, report in rows:
            cells = []
            for at in [row["at"] for row in report["rows"]] + [report["average"]]:
                cells += [f"{value(at, name, k):.2f}" for k in (10, 50)]
            print(f"| {label} | " + " | ".join(cells) + " |")
        print()
    queries = ", ".join(f"{row['category']} {row['queries']} queries / {row['gallery']} gallery"
                        for row in rows[0][1]["rows"])
    print(f"{rows[0][1]['split']} split: {queries}")


if __name__ == "__main__":
    main()
