#!/usr/bin/env bash
# The study's pipeline on the hard synthetic level, end to end, for each seed given: synth --difficulty
# hard -> build (val + train) -> zero-shot eval (text-only, image-only, sum) -> the Combiner (unmined,
# mined) -> text-tower fine-tuning (unmined, mined; the base index answers it as it is) -> both towers
# fine-tuned (unmined unless BOTH_MINED) -> rebuild the index with that model -> eval. Every eval is the val split, the model
# never saw these seeds. Prints one markdown row per (seed, row) and a mean ± spread table at the end.
#
# Usage: tools/bench/finetune_study.sh [FIQ_INDEX_BINARY] [SEEDS...]   (default target/release/fiq-index 11 12 13)
# Environment: PER_CATEGORY (2000), EPOCHS (10), TEXT_LR (5e-4), MINED (8), BOTH_LR (1e-4), BOTH_EPOCHS (5),
# BOTH_MINED (0: an image-tower step encodes every mined negative's image too, 5x the cost on a CPU),
# KEEP=1 keeps the work folder, RESULTS=FILE also appends the rows there (to run seeds in parallel),
# ROWS: which groups of rows to run (default "combiner text both"; "text-mined" alone runs only the
# mined text row; the zero-shot rows always run), MINE_BELOW=F sets `--mine-below-target F` (the mined
# rows mine positive-aware at the CLI's default 0.95; MINE_BELOW=off mines the nearest),
# MINE_POOL=N draws the mined negatives at random from the N nearest (`--mine-pool N`).
# COMBINER_OPTS: extra flags for the Combiner rows only (the tuned rows of BENCHMARKS.md use
# "--logit-scale 10 --dropout 0.1" with EPOCHS=20; the defaults are CLIP4Cir's: scale 100, dropout 0.5).
# TEXT_OPTS: extra flags for the text-tower rows only (e.g. "--logit-scale 25").
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release/fiq-index}
shift || true
seeds=("${@:-11 12 13}")
# shellcheck disable=SC2206
seeds=(${seeds[*]})
per_category=${PER_CATEGORY:-2000}
epochs=${EPOCHS:-10}
text_lr=${TEXT_LR:-5e-4}
both_lr=${BOTH_LR:-1e-4}
both_epochs=${BOTH_EPOCHS:-5}
both_mined=${BOTH_MINED:-0}
mined=${MINED:-8}
rows=" ${ROWS:-combiner text both} "
mining_flags=()
# shellcheck disable=SC2206
combiner_opts=(${COMBINER_OPTS:-})
# shellcheck disable=SC2206
text_opts=(${TEXT_OPTS:-})
[[ -z "${MINE_BELOW:-}" ]] || mining_flags=(--mine-below-target "$MINE_BELOW")
[[ -z "${MINE_POOL:-}" ]] || mining_flags+=(--mine-pool "$MINE_POOL")
work=$(mktemp -d)
[[ "${KEEP:-0}" == 1 ]] || trap 'rm -rf "$work"' EXIT
# candle's CPU ops wait for their worker threads by spinning; on 2 cores shared with anything else that
# costs 3x (BENCHMARKS.md, "Encoder fine-tuning"), so the training runs on one thread.
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
results=$work/results.tsv
: > "$results"

# eval JSON -> "R@10 R@50" of each report in it, averaged over categories.
averages() {
  python3 - "$1" <<'PY'
import json, sys
for entry in json.load(open(sys.argv[1]))["reports"]:
    avg = entry.get("exact", entry)["average"]
    print(f"{100 * avg[0]['recall']:.2f} {100 * avg[1]['recall']:.2f}")
PY
}
# train's best epoch (the table it prints) -> "R@10 R@50".
best_of() { awk '/^best epoch/ {gsub(",", ""); print $5, $7}' "$1"; }
row() {
  echo -e "$1\t$2\t$3\t$4" >> "$results"
  [[ -z "${RESULTS:-}" ]] || echo -e "$1\t$2\t$3\t$4" >> "$RESULTS"
  echo "| $1 | $2 | $3 / $4 |"
}

for seed in "${seeds[@]}"; do
  dir=$work/$seed
  data=$dir/data index=$dir/index
  "$bin" synth --out "$data" --per-category "$per_category" --seed "$seed" --difficulty hard >/dev/null
  for split in val train; do
    "$bin" build --fashioniq "$data" --out "$index" --split "$split" --quiet >/dev/null 2>&1
  done
  "$bin" eval --fashioniq "$data" --index "$index" --split val --baselines --exact-only --quiet \
    --json "$dir/zero-shot.json" >/dev/null 2>&1
  mapfile -t zero < <(averages "$dir/zero-shot.json")
  row "$seed" "sum, zero-shot" ${zero[0]}
  row "$seed" "text-only, zero-shot" ${zero[1]}
  row "$seed" "image-only, zero-shot" ${zero[2]}

  common=(--fashioniq "$data" --index "$index" --epochs "$epochs" --seed 1)
  if [[ "$rows" == *" combiner "* ]]; then
    "$bin" train --what combiner "${common[@]}" "${combiner_opts[@]}" --out "$dir/combiner" > "$dir/combiner.log" 2>&1
    row "$seed" "Combiner, unmined" $(best_of "$dir/combiner.log")
    "$bin" train --what combiner "${common[@]}" "${combiner_opts[@]}" --out "$dir/combiner-mined" --mined-negatives 16 \
      "${mining_flags[@]}" > "$dir/combiner-mined.log" 2>&1
    row "$seed" "Combiner, mined" $(best_of "$dir/combiner-mined.log")
  fi

  if [[ "$rows" == *" text "* || "$rows" == *" text-mined "* ]]; then
    if [[ "$rows" == *" text "* ]]; then
      "$bin" train --what text-encoder "${common[@]}" "${text_opts[@]}" --lr "$text_lr" --out "$dir/text" > "$dir/text.log" 2>&1
      row "$seed" "text tower fine-tuned, unmined" $(best_of "$dir/text.log")
    fi
    "$bin" train --what text-encoder "${common[@]}" "${text_opts[@]}" --lr "$text_lr" --out "$dir/text-mined" \
      --mined-negatives "$mined" "${mining_flags[@]}" > "$dir/text-mined.log" 2>&1
    row "$seed" "text tower fine-tuned, mined" $(best_of "$dir/text-mined.log")
    # The text-tuned checkpoint answers the base model's index without a rebuild:
    "$bin" eval --fashioniq "$data" --index "$index" --split val --model "$dir/text-mined/best" \
      --exact-only --quiet --json "$dir/text-mined.json" >/dev/null 2>&1
  fi

  [[ "$rows" == *" both "* ]] || continue
  "$bin" train --what encoder --fashioniq "$data" --index "$index" --epochs "$both_epochs" --seed 1 \
    --lr "$both_lr" --out "$dir/both" --mined-negatives "$both_mined" > "$dir/both.log" 2>&1
  # Both towers changed: the gallery is re-encoded into a new index with the tuned model.
  for split in val train; do
    "$bin" build --fashioniq "$data" --out "$dir/index-both" --split "$split" \
      --model "$dir/both/best" --quiet >/dev/null 2>&1
  done
  "$bin" eval --fashioniq "$data" --index "$dir/index-both" --split val --model "$dir/both/best" \
    --exact-only --quiet --json "$dir/both.json" >/dev/null 2>&1
  mapfile -t both < <(averages "$dir/both.json")
  both_row="both towers fine-tuned (rebuilt index)"
  [[ "$both_mined" == 0 ]] || both_row="both towers fine-tuned, $both_mined mined (rebuilt index)"
  row "$seed" "$both_row" ${both[0]}
done

echo
echo "| row | avg R@10 (mean ± sd over seeds) | avg R@50 |"
echo "|---|---|---|"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    seed, name, r10, r50 = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append((float(r10), float(r50)))
for name, values in rows.items():
    tens, fifties = [v[0] for v in values], [v[1] for v in values]
    sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0
    print(f"| {name} | {statistics.mean(tens):.1f} ± {sd(tens):.1f} | {statistics.mean(fifties):.1f} ± {sd(fifties):.1f} |")
PY
