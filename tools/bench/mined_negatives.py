#!/usr/bin/env python3
"""What mining finds on a synthetic tree: for a sample of training triplets, the zero-shot sum query's
nearest non-targets in the triplet's gallery, classified by the attribute file (the ground truth only a
synthetic tree has): attribute twins of the target (a false negative: as good an answer), one attribute
away, or further (a true negative); where the target ranks; and what positive-aware mining
(`--mine-below-target`) keeps.

Usage: tools/bench/mined_negatives.py TREE INDEX [FIQ_INDEX] [--per-category N] [--negatives K] [--below F]
TREE is a `fiq-index synth` tree, INDEX an index built from its train split (the finetune study's
`build`); FIQ_INDEX defaults to target/release/fiq-index. Queries go through `fiq-index query --queries
--exact` with the evaluation text, as the miner builds them.
"""
import argparse, collections, json, random, statistics, subprocess, tempfile

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("tree")
parser.add_argument("index")
parser.add_argument("binary", nargs="?", default="target/release/fiq-index")
parser.add_argument("--per-category", type=int, default=100)
parser.add_argument("--negatives", type=int, default=8)
parser.add_argument("--below", type=float, default=0.95)
args = parser.parse_args()

attributes = {}
for record in json.load(open(f"{args.tree}/synth-attributes.json"))["images"]:
    attributes[record["name"]] = {k: v for k, v in record.items() if k not in ("name", "split")}

def differences(a, b):
    a, b = attributes[a], attributes[b]
    return sum(a.get(k) != b.get(k) for k in set(a) | set(b))

def kind(key, target):
    d = differences(key, target)
    return "twin of the target" if d == 0 else "1 attribute away" if d == 1 else "2+ attributes away"

def clean(caption):
    return caption.strip(" .?,\t\n")

def evaluation_text(captions):  # fiq::fashioniq::eval_query_text
    first, second = clean(captions[0]), clean(captions[1])
    capitalized = first[:1].upper() + first[1:].lower()
    if first and second:
        return f"{capitalized} and {second}"
    return capitalized if first else second[:1].upper() + second[1:].lower()

random.seed(0)
sample, lines = [], []
for category in ("dress", "shirt", "toptee"):
    triplets = json.load(open(f"{args.tree}/captions/cap.{category}.train.json"))
    gallery = json.load(open(f"{args.tree}/image_splits/split.{category}.train.json"))
    for triplet in random.sample(triplets, min(args.per_category, len(triplets))):
        sample.append(triplet)
        lines.append(json.dumps({"ref": triplet["candidate"], "text": evaluation_text(triplet["captions"]),
                                 "keys": gallery}))
with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as queries:
    queries.write("\n".join(lines) + "\n")
    queries.flush()
    out = subprocess.run([args.binary, "query", args.index, "--queries", queries.name, "--json", "--exact",
                          "-k", "100000"], capture_output=True, text=True, check=True).stdout
answers = [json.loads(line)["hits"] for line in out.splitlines() if line.strip()]

k = args.negatives
old_depth = 4 * k + 1  # the fixed depth positive-aware mining searched before it searched deeper
nearest, aware = collections.Counter(), collections.Counter()
ranks, above, old_full, old_none, aware_ranks = [], [], 0, 0, []
for triplet, hits in zip(sample, answers):
    target = triplet["target"]
    rank = next(i for i, hit in enumerate(hits) if hit["key"] == target)
    target_score = hits[rank]["score"]
    ranks.append(rank + 1)
    others = [(i, hit) for i, hit in enumerate(hits) if hit["key"] != target]
    for _, hit in others[:k]:
        nearest[kind(hit["key"], target)] += 1
        above.append(hit["score"] >= args.below * target_score)
    eligible = [(i, hit) for i, hit in others if hit["score"] < args.below * target_score]
    within_old = sum(i < old_depth for i, _ in eligible)
    old_full += within_old >= k
    old_none += within_old == 0
    for i, hit in eligible[:k]:
        aware[kind(hit["key"], target)] += 1
        aware_ranks.append(i + 1)

def shares(counter):
    total = sum(counter.values())
    return ", ".join(f"{name} {100 * n / total:.1f}%" for name, n in sorted(counter.items()))

n = len(sample)
quartiles = statistics.quantiles(ranks, n=4)
print(f"{n} training queries (zero-shot sum, evaluation text), galleries of "
      f"{len(answers[0])}-{max(len(a) for a in answers)}")
print(f"target's rank: quartiles {quartiles[0]:.0f} / {quartiles[1]:.0f} / {quartiles[2]:.0f}; "
      f"in the top 10 for {100 * sum(r <= 10 for r in ranks) / n:.1f}%")
print(f"the {k} nearest non-targets: {shares(nearest)}; scoring at least {args.below} x the target's: "
      f"{100 * sum(above) / len(above):.1f}%")
print(f"positive-aware ({args.below}) within the old fixed depth {old_depth}: {old_full} of {n} queries "
      f"get all {k}, {old_none} get none")
print(f"positive-aware, searched as deep as needed: {shares(aware)}; their rank: median "
      f"{statistics.median(aware_ranks):.0f}")
