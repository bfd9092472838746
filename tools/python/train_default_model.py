#!/usr/bin/env python3
"""The PyTorch reference of `fiq-index pretrain`: the built-in model's recipe in transformers.

This script made fiq's built-in model (models/fiq-default) until 2026-12-06. Since then fiq makes it
itself (`tools/train_default_model.sh`: `synth`, `init-model`, `pretrain`), which reached 98.75 sum R@10 on
an unseen tree where this script's model reached 97.33 (BENCHMARKS.md). This script stays as the peer of
fiq's training speed (`tools/bench/pretrain_speed.sh`) and of its objective; its default --out is no
longer the built-in model's folder.

What follows describes the recipe both implement.

The model is an ordinary Hugging Face `CLIPModel` (config.json, model.safetensors, tokenizer.json), small
enough to train on two CPU cores in well under an hour (20 epochs of about 50 s on idle cores), so that fiq
loads it through the same candle CLIP code as any real checkpoint. It only knows fiq's synthetic garments (src/synth/): eight colors, four prints,
three sleeve lengths, three garment lengths, two necklines, three categories.

Data: the TRAIN split of `fiq-index synth --per-category 4000 --seed 7` (7,200 images). Nothing else is
read; the val split of the same tree is only used to print retrieval numbers while training. Use another
seed (e.g. 11) for any evaluation of the result, so that its images were never seen.

Objective, per step (B reference images, drawn from the train split):
  * composed: for each reference, a target in the train split whose attributes differ in one or two
    attributes (half each), with relative captions written exactly as fiq's generator writes them
    (src/synth/captions.rs, ported below) and joined with CLIP4Cir's four training variants
    ("C1 and c2", "C2 and c1", "C1", "C2"); one more image one attribute away from the target as a hard
    negative. Query = normalize(normalize(image(ref)) + normalize(text(caption))), which is fiq's `sum`
    fusion; InfoNCE against every image of the step (references, targets, hard negatives); images with the
    target's exact attributes other than the target (attribute twins) are masked out, not negatives.
  * image-text: CLIP's symmetric contrastive loss between every image of the step and an absolute caption
    of its attributes ("a dress that is red and striped and has long sleeves and ..."), twins masked.

Text: the real CLIP BPE tokenizer (tests/fixtures/clip-tiny/tokenizer.json, 49,408 tokens), so the text
tower keeps CLIP's vocabulary; the text width stays small because the token table dominates the size.
Images: 64 x 64 synthetic renders, the model's input size, so fiq's resize is the identity and the
preprocessing is only CLIP's mean/std normalization. Patches of 16 pixels (a 4 x 4 grid): measured on these
2 cores, patch 16 (width 128) reached val sum-fusion R@10 67.2 after 6 epochs (about 1 s a step), patch 8
(width 96) 37.3 after 4 epochs in about the same time (1.7 s a step).
Only the token rows that captions use (a few dozen) are trained (CompactTokenEmbedding); the others keep
their random initial values, exactly as if the whole table were trained without weight decay.

Run (torch and transformers >= 5 in a virtualenv; two threads; 17-45 minutes on 2 cores):
    cargo build --release -p fiq-tools
    python tools/python/train_default_model.py --out target/train-default/pytorch \
        --fiq-index target/release/fiq-index --check-rust
The run is seeded (--seed, default 0) and prints the loss of every epoch. --check-rust re-encodes val
images and texts with `fiq-index embed --model OUT` and compares with PyTorch (max abs difference).
"""

import argparse
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
TOKENIZER = REPO / "tests/fixtures/clip-tiny/tokenizer.json"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
SYNTH_SEED = 7
SYNTH_PER_CATEGORY = 4000
KINDS = ["color", "pattern", "sleeves", "length", "neckline"]
VALUES = {
    "color": ["red", "blue", "green", "yellow", "black", "white", "pink", "purple"],
    "pattern": ["solid", "stripes", "dots", "checks"],
    "sleeves": ["sleeveless", "short", "long"],
    "length": ["short", "medium", "long"],
    "neckline": ["round", "v-neck"],
}
ORDER = {kind: {value: i for i, value in enumerate(values)} for kind, values in VALUES.items()}


# ---------------------------------------------------------------------------------------------------------
# Captions: a port of src/synth/captions.rs (same phrases; Python's RNG instead of SplitMix64).


def wordings(kind, candidate, target):
    if kind == "color":
        to, frm = target["color"], candidate["color"]
        return [f"is {to}", f"is {to} in color", f"{to} instead of {frm}"]
    if kind == "pattern":
        return {
            "solid": ["is solid", "has no pattern"],
            "stripes": ["has stripes", "is striped"],
            "dots": ["has polka dots", "is dotted"],
            "checks": ["has checks", "is checkered"],
        }[target["pattern"]]
    if kind == "sleeves":
        phrases = list(
            {
                "sleeveless": ["is sleeveless", "has no sleeves"],
                "short": ["has short sleeves"],
                "long": ["has long sleeves"],
            }[target["sleeves"]]
        )
        shorter = ORDER["sleeves"][target["sleeves"]] < ORDER["sleeves"][candidate["sleeves"]]
        phrases.append("has shorter sleeves" if shorter else "has longer sleeves")
        return phrases
    if kind == "length":
        shorter = ORDER["length"][target["length"]] < ORDER["length"][candidate["length"]]
        return ["is shorter" if shorter else "is longer", absolute_length(target)]
    if kind == "neckline":
        return {
            "v-neck": ["has a v-neck", "has a v neckline"],
            "round": ["has a round neck", "has a crew neckline"],
        }[target["neckline"]]
    raise ValueError(kind)


def absolute_length(attributes):
    if attributes["category"] == "dress":
        return {"short": "is mini", "medium": "is knee length", "long": "is floor length"}[attributes["length"]]
    return {"short": "is cropped", "medium": "is regular length", "long": "is long"}[attributes["length"]]


def join_phrases(phrases):
    text, previous_is = "", False
    for position, phrase in enumerate(phrases):
        starts_with_is = phrase.startswith("is ")
        if position > 0:
            text += " and "
        text += phrase[3:] if position > 0 and previous_is and starts_with_is else phrase
        previous_is = starts_with_is
    return text


def differences(a, b):
    return [kind for kind in KINDS if a[kind] != b[kind]]


def relative_captions(candidate, target, rng):
    kinds = differences(candidate, target)
    rng.shuffle(kinds)
    options = [wordings(kind, candidate, target) for kind in kinds]
    first_choice = [rng.randrange(len(phrases)) for phrases in options]
    first = [phrases[choice] for phrases, choice in zip(options, first_choice)]

    def other_wording(position):
        phrases = options[position]
        shift = 1 + rng.randrange(len(phrases) - 1)
        return phrases[(first_choice[position] + shift) % len(phrases)]

    if len(kinds) > 1 and rng.randrange(2) == 0:
        second = [other_wording(rng.randrange(len(kinds)))]
    else:
        second = [other_wording(position) for position in reversed(range(len(kinds)))]
    return join_phrases(first), join_phrases(second)


def clean_caption(caption):
    return caption.strip().strip(".?,").strip()


def join_captions(first, second):
    """src/fashioniq/captions.rs: "{C1} and {c2}" with Python-style capitalization of the first."""
    first, second = clean_caption(first), clean_caption(second)
    if first and second:
        return f"{first.capitalize()} and {second}"
    return (first or second).capitalize()


def training_text(captions, rng):
    """One of CLIP4Cir's four training variants, uniformly."""
    c1, c2 = captions
    return [join_captions(c1, c2), join_captions(c2, c1), join_captions(c1, ""), join_captions(c2, "")][
        rng.randrange(4)
    ]


NOUNS = {"dress": ["dress"], "shirt": ["shirt", "button-down shirt"], "toptee": ["top", "tee", "t-shirt"]}


def absolute_caption(attributes, rng):
    """A description of every attribute, in the phrases the relative captions use, in random order."""
    phrases = [
        rng.choice([f"is {attributes['color']}", f"is {attributes['color']} in color"]),
        rng.choice(wordings("pattern", attributes, attributes)),
        rng.choice(wordings("sleeves", attributes, attributes)[:-1]),
        absolute_length(attributes),
        rng.choice(wordings("neckline", attributes, attributes)),
    ]
    rng.shuffle(phrases)
    return f"a {rng.choice(NOUNS[attributes['category']])} that {join_phrases(phrases)}"


# ---------------------------------------------------------------------------------------------------------
# Data.


def attribute_key(record):
    return (record["category"],) + tuple(record[kind] for kind in KINDS)


class Split:
    """The images of one split in memory (uint8), with their attributes and an index by attribute key."""

    def __init__(self, root, records):
        self.records = records
        self.pixels = torch.from_numpy(
            np.stack([np.asarray(Image.open(root / "images" / f"{r['name']}.png").convert("RGB")) for r in records])
        ).permute(0, 3, 1, 2).contiguous()
        self.keys = [attribute_key(r) for r in records]
        self.by_key = {}
        for i, key in enumerate(self.keys):
            self.by_key.setdefault(key, []).append(i)
        key_ids = {key: i for i, key in enumerate(sorted(self.by_key))}
        self.key_ids = torch.tensor([key_ids[key] for key in self.keys])
        self.index_of = {r["name"]: i for i, r in enumerate(records)}

    def changed(self, i, kinds, rng):
        """An image whose attributes are image i's with each of `kinds` changed, or None."""
        attributes = dict(self.records[i])
        for kind in kinds:
            attributes[kind] = rng.choice([v for v in VALUES[kind] if v != attributes[kind]])
        found = self.by_key.get(attribute_key(attributes))
        return rng.choice(found) if found else None


def normalize_pixels(pixels):
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (pixels.float() / 255.0 - mean) / std


class Tokens:
    def __init__(self):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(TOKENIZER))
        self.end = self.tokenizer.token_to_id("<|endoftext|>")
        self.cache = {}

    def __call__(self, texts):
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            for text, encoding in zip(missing, self.tokenizer.encode_batch(missing)):
                ids = encoding.ids[:77]
                ids[-1] = self.end
                self.cache[text] = ids
        rows = [self.cache[t] for t in texts]
        width = max(len(r) for r in rows)
        # Padding after <|endoftext|>: the causal mask hides it from the pooled position.
        return torch.tensor([r + [self.end] * (width - len(r)) for r in rows])


def caption_words():
    """Every word any caption of this script can contain (relative, absolute, joined)."""
    words = {"a", "that", "and"}
    for nouns in NOUNS.values():
        words.update(" ".join(nouns).split())
    base = {"category": "dress", "color": "red", "pattern": "solid", "sleeves": "short", "length": "medium",
            "neckline": "round"}
    for category in NOUNS:
        for kind in KINDS:
            for a in VALUES[kind]:
                for b in VALUES[kind]:
                    candidate = dict(base, category=category, **{kind: a})
                    target = dict(base, category=category, **{kind: b})
                    for phrase in wordings(kind, candidate, target) + [absolute_length(target)]:
                        words.update(phrase.split())
    return sorted(words)


class CompactTokenEmbedding(torch.nn.Module):
    """The token table restricted to the ids captions use (a few dozen of 49,408), for training speed.

    Equivalent to training the full table without weight decay on it: rows no caption uses get no gradient
    and keep their initial values either way. `full_weight()` writes the trained rows back into the table.
    """

    def __init__(self, table, ids):
        super().__init__()
        self.register_buffer("initial", table.weight.detach().clone(), persistent=False)
        self.register_buffer("ids", torch.tensor(ids), persistent=False)
        remap = torch.full((table.num_embeddings,), -1, dtype=torch.long)
        remap[self.ids] = torch.arange(len(ids))
        self.register_buffer("remap", remap, persistent=False)
        self.rows = torch.nn.Parameter(table.weight.detach()[self.ids].clone())

    def forward(self, input_ids):
        index = self.remap[input_ids]
        if (index < 0).any():
            raise ValueError(f"token ids outside the caption vocabulary: {input_ids[index < 0].unique().tolist()}")
        return self.rows[index]

    def full_weight(self):
        weight = self.initial.clone()
        weight[self.ids] = self.rows.detach()
        return weight


# ---------------------------------------------------------------------------------------------------------
# Model.


def model_config(args):
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config=dict(
            vocab_size=49408,
            hidden_size=args.text_width,
            intermediate_size=4 * args.text_width,
            num_hidden_layers=args.text_layers,
            num_attention_heads=args.text_width // 16,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=1,
        ),
        vision_config=dict(
            hidden_size=args.vision_width,
            intermediate_size=4 * args.vision_width,
            num_hidden_layers=args.vision_layers,
            num_attention_heads=args.vision_width // 32,
            image_size=64,
            patch_size=args.patch,
            num_channels=3,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
        ),
        projection_dim=args.projection_dim,
        logit_scale_init_value=math.log(1 / 0.07),
    )


def encode_images(model, pixels):
    pooled = model.vision_model(pixel_values=normalize_pixels(pixels)).pooler_output
    return model.visual_projection(pooled)


def encode_texts(model, ids):
    pooled = model.text_model(input_ids=ids).pooler_output
    return model.text_projection(pooled)


def masked_cross_entropy(logits, positives, mask):
    """Cross-entropy with `positives[i]` the target column of row i; True in `mask` removes a column."""
    logits = logits.masked_fill(mask, float("-inf"))
    return F.cross_entropy(logits, positives)


def step_loss(model, comp_scale, train, batch, tokens, rng):
    """The two losses of one step; `batch` holds (ref, target, hard negative, captions) tuples."""
    refs = [b[0] for b in batch]
    pool = refs + [b[1] for b in batch] + [b[2] for b in batch]
    n = len(batch)
    images = F.normalize(encode_images(model, train.pixels[pool]), dim=-1)
    texts = [training_text(b[3], rng) for b in batch] + [absolute_caption(train.records[i], rng) for i in pool]
    text_vectors = F.normalize(encode_texts(model, tokens(texts)), dim=-1)
    relative, absolute = text_vectors[:n], text_vectors[n:]
    keys = train.key_ids[pool]

    # Composed: query i's target is pool entry n + i; its attribute twins elsewhere in the pool are masked.
    query = F.normalize(images[:n] + relative, dim=-1)
    logits = comp_scale.exp().clamp(max=100) * query @ images.T
    targets = torch.arange(n, 2 * n)
    twins = keys[targets].unsqueeze(1) == keys.unsqueeze(0)
    twins[torch.arange(n), targets] = False
    composed = masked_cross_entropy(logits, targets, twins)

    # Image-text, both directions, twins masked.
    scale = model.logit_scale.exp().clamp(max=100)
    logits = scale * images @ absolute.T
    same = keys.unsqueeze(1) == keys.unsqueeze(0)
    same.fill_diagonal_(False)
    diagonal = torch.arange(len(pool))
    contrastive = 0.5 * (
        masked_cross_entropy(logits, diagonal, same) + masked_cross_entropy(logits.T, diagonal, same)
    )
    return composed, contrastive


def sample_batch(train, refs, rng):
    batch = []
    for ref in refs:
        for _ in range(20):
            kinds = rng.sample(KINDS, 1 + rng.randrange(2))
            target = train.changed(ref, kinds, rng)
            if target is None:
                continue
            hard = train.changed(target, [rng.choice(KINDS)], rng)
            if hard is None:
                hard = rng.randrange(len(train.records))
            captions = relative_captions(train.records[ref], train.records[target], rng)
            batch.append((ref, target, hard, captions))
            break
    return batch


# ---------------------------------------------------------------------------------------------------------
# Validation on the val split of the same tree (never trained on): sum / text / image fusion, R@10 and R@50.


@torch.no_grad()
def validate(model, root, val, tokens):
    model.eval()
    image_vectors = torch.cat(
        [F.normalize(encode_images(model, val.pixels[i : i + 512]), dim=-1) for i in range(0, len(val.records), 512)]
    )
    results = {}
    for category in ["dress", "shirt", "toptee"]:
        triplets = json.loads((root / "captions" / f"cap.{category}.val.json").read_text())
        gallery = json.loads((root / "image_splits" / f"split.{category}.val.json").read_text())
        gallery_rows = torch.tensor([val.index_of[name] for name in gallery])
        g = image_vectors[gallery_rows]
        refs = torch.tensor([val.index_of[t["candidate"]] for t in triplets])
        target_pos = torch.tensor([gallery.index(t["target"]) for t in triplets])
        text = F.normalize(
            encode_texts(model, tokens([join_captions(*t["captions"]) for t in triplets])), dim=-1
        )
        for name, query in [
            ("sum", F.normalize(image_vectors[refs] + text, dim=-1)),
            ("text", text),
            ("image", image_vectors[refs]),
        ]:
            scores = query @ g.T
            rank = (scores > scores.gather(1, target_pos[:, None])).sum(1)
            results.setdefault(name, []).append(((rank < 10).float().mean().item(), (rank < 50).float().mean().item()))
    model.train()
    return {name: tuple(100 * float(np.mean([r[k] for r in rows])) for k in range(2)) for name, rows in results.items()}


# ---------------------------------------------------------------------------------------------------------
# Export and the Rust parity check.


def export(model, out):
    embeddings = model.text_model.embeddings
    if isinstance(embeddings.token_embedding, CompactTokenEmbedding):
        compact = embeddings.token_embedding
        table = torch.nn.Embedding(*compact.initial.shape)
        table.weight.data.copy_(compact.full_weight())
        embeddings.token_embedding = table
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    shutil.copyfile(TOKENIZER, out / "tokenizer.json")
    config = json.loads((out / "config.json").read_text())
    for tower in ("text_config", "vision_config"):
        assert config[tower]["hidden_act"] == "quick_gelu", config[tower]["hidden_act"]
    assert config["text_config"]["eos_token_id"] == 49407
    print(f"wrote {out} ({(out / 'model.safetensors').stat().st_size / 1e6:.1f} MB of weights)")


@torch.no_grad()
def check_rust(model, out, fiq_index, root, val, tokens):
    """Encodes val images and texts with `fiq-index embed --model OUT` and compares with PyTorch."""
    from transformers import CLIPModel

    reloaded = CLIPModel.from_pretrained(out).eval()
    names = [r["name"] for r in val.records[:64]]
    texts = ["a red dress", "Is blue and has stripes and has long sleeves", "is shorter", "has a v-neck"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "texts.txt").write_text("\n".join(texts) + "\n")
        paths = [str(root / "images" / f"{n}.png") for n in names]
        subprocess.run(
            [str(fiq_index), "embed", "--model", str(out), "--quiet", "--images", *paths, "--out", str(tmp / "i.npy")],
            check=True,
        )
        subprocess.run(
            [str(fiq_index), "embed", "--model", str(out), "--quiet", "--texts", str(tmp / "texts.txt"),
             "--out", str(tmp / "t.npy")],
            check=True,
        )
        rust_images, rust_texts = np.load(tmp / "i.npy"), np.load(tmp / "t.npy")
    torch_images = F.normalize(encode_images(reloaded, val.pixels[[val.index_of[n] for n in names]]), dim=-1).numpy()
    torch_texts = F.normalize(encode_texts(reloaded, tokens(texts)), dim=-1).numpy()
    image_diff = float(np.abs(rust_images - torch_images).max())
    text_diff = float(np.abs(rust_texts - torch_texts).max())
    print(f"fiq vs PyTorch, max abs difference of unit vectors: images {image_diff:.2e}, texts {text_diff:.2e}")
    if max(image_diff, text_diff) > 1e-4:
        sys.exit("parity check FAILED (tolerance 1e-4)")


# ---------------------------------------------------------------------------------------------------------


def load_tree(root, fiq_index):
    attributes_path = root / "synth-attributes.json"
    if not attributes_path.exists():
        if fiq_index is None:
            sys.exit(f"{root} has no synth-attributes.json; pass --fiq-index to generate it")
        subprocess.run(
            [str(fiq_index), "synth", "--out", str(root), "--per-category", str(SYNTH_PER_CATEGORY),
             "--seed", str(SYNTH_SEED)],
            check=True,
        )
    attributes = json.loads(attributes_path.read_text())
    options = attributes["options"]
    if (options["seed"], options["per_category"], options["size"]) != (SYNTH_SEED, SYNTH_PER_CATEGORY, 64):
        sys.exit(f"{root} was generated with {options}; the default model is trained on "
                 f"--per-category {SYNTH_PER_CATEGORY} --seed {SYNTH_SEED} --size 64")
    train = Split(root, [r for r in attributes["images"] if r["split"] == "train"])
    val = Split(root, [r for r in attributes["images"] if r["split"] == "val"])
    return train, val


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "target/train-default/pytorch")
    parser.add_argument("--data", type=Path, default=REPO / "target/train-default/synth7",
                        help="synthetic tree (generated with --fiq-index if missing)")
    parser.add_argument("--fiq-index", type=Path, help="fiq-index binary: generates --data, and --check-rust")
    parser.add_argument("--check-rust", action="store_true", help="compare fiq's embeddings of the result with PyTorch's")
    parser.add_argument("--check-only", action="store_true", help="only run --check-rust on an existing --out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128, help="references per step (3 images each)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=100, help="warmup steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vision-width", type=int, default=128)
    parser.add_argument("--vision-layers", type=int, default=4)
    parser.add_argument("--patch", type=int, default=16)
    parser.add_argument("--text-width", type=int, default=64)
    parser.add_argument("--text-layers", type=int, default=3)
    parser.add_argument("--projection-dim", type=int, default=128)
    parser.add_argument("--steps-per-epoch", type=int, help="default: train images / batch size")
    parser.add_argument("--validate-every", type=int, default=2, help="epochs between val-split retrieval checks")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    from transformers import CLIPModel

    train, val = load_tree(args.data, args.fiq_index)
    tokens = Tokens()
    if args.check_only:
        check_rust(None, args.out, args.fiq_index, args.data, val, tokens)
        return

    model = CLIPModel(model_config(args))
    vocabulary = sorted(set(tokens(caption_words()).flatten().tolist()))
    model.text_model.embeddings.token_embedding = CompactTokenEmbedding(
        model.text_model.embeddings.token_embedding, vocabulary
    )
    model.train()
    comp_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (decay if parameter.ndim >= 2 and "embedding" not in name else no_decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": no_decay + [comp_scale], "weight_decay": 0.0},
        ],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
        fused=True,
    )
    steps_per_epoch = args.steps_per_epoch or len(train.records) // args.batch_size
    total = steps_per_epoch * args.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)),
    )
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{parameters / 1e6:.2f}M trained parameters ({len(vocabulary)} of 49,408 token rows); "
          f"{len(train.records)} train images; "
          f"{args.epochs} epochs x {steps_per_epoch} steps of {args.batch_size} references", flush=True)
    started = time.time()
    for epoch in range(1, args.epochs + 1):
        order = list(range(len(train.records)))
        rng.shuffle(order)
        sums = np.zeros(2)
        epoch_start = time.time()
        for step in range(steps_per_epoch):
            start = (step * args.batch_size) % (len(order) - args.batch_size + 1)
            batch = sample_batch(train, order[start : start + args.batch_size], rng)
            composed, contrastive = step_loss(model, comp_scale, train, batch, tokens, rng)
            loss = composed + contrastive
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(model.parameters()) + [comp_scale], 1.0)
            optimizer.step()
            schedule.step()
            sums += [composed.item(), contrastive.item()]
        composed_mean, contrastive_mean = sums / steps_per_epoch
        line = (f"epoch {epoch:>2}  loss {composed_mean + contrastive_mean:.4f}  (composed {composed_mean:.4f}, "
                f"image-text {contrastive_mean:.4f})  {time.time() - epoch_start:.0f} s")
        if epoch % args.validate_every == 0 or epoch == args.epochs:
            scores = validate(model, args.data, val, tokens)
            line += "  val R@10/R@50 " + "  ".join(f"{k} {v[0]:.1f}/{v[1]:.1f}" for k, v in scores.items())
        print(line, flush=True)
    print(f"trained in {time.time() - started:.0f} s", flush=True)
    model.eval()
    export(model, args.out)
    if args.check_rust:
        if args.fiq_index is None:
            sys.exit("--check-rust needs --fiq-index")
        check_rust(model, args.out, args.fiq_index, args.data, val, tokens)


if __name__ == "__main__":
    main()
