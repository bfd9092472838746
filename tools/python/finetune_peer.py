"""The PyTorch peer of `fiq-index train --what text-encoder`: the same text-tower fine-tuning step
(transformers' CLIPModel text tower + projection, sum fusion with fixed image vectors, InfoNCE at logit
scale 100 over in-batch targets, AdamW, gradient clipping at 1.0) on the same captions, timed the same
way (forward, backward and update; no validation). Prints triplets/s.

Usage: finetune_peer.py MODEL_DIR FASHIONIQ_ROOT [--batch 64] [--steps 40] [--threads N]
"""

import argparse
import json
import pathlib
import time

import torch
import torch.nn.functional as F
from transformers import CLIPModel, CLIPTokenizerFast


def training_texts(root: pathlib.Path) -> list[str]:
    """Every train triplet's first caption variant, as fiq's `training_query_text` joins them."""
    texts = []
    for category in ("dress", "shirt", "toptee"):
        path = root / "captions" / f"cap.{category}.train.json"
        for entry in json.loads(path.read_text()):
            first, second = entry["captions"]
            texts.append(f"{first.strip(' .').strip()} and {second.strip(' .').strip()}")
    return texts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("fashioniq")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = CLIPModel.from_pretrained(args.model)
    tokenizer = CLIPTokenizerFast.from_pretrained(args.model)
    texts = training_texts(pathlib.Path(args.fashioniq))
    dim = model.config.projection_dim
    params = list(model.text_model.parameters()) + list(model.text_projection.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    model.train()
    done = 0
    elapsed = 0.0
    for step in range(args.steps + 3):
        start = (step * args.batch) % max(1, len(texts) - args.batch)
        batch = texts[start : start + args.batch]
        images = F.normalize(torch.randn(len(batch), dim), dim=-1)
        targets = F.normalize(torch.randn(len(batch), dim), dim=-1)
        began = time.perf_counter()
        tokens = tokenizer(batch, padding=True, truncation=True, return_tensors="pt")
        pooled = model.text_model(**tokens).pooler_output
        text = F.normalize(model.text_projection(pooled), dim=-1)
        queries = F.normalize(images + text, dim=-1)
        logits = 100.0 * queries @ targets.T
        loss = F.cross_entropy(logits, torch.arange(len(batch)))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if step >= 3:  # the first steps warm the allocator and kernels up
            elapsed += time.perf_counter() - began
            done += len(batch)
    print(json.dumps({"threads": args.threads, "batch": args.batch, "triplets_per_second": done / elapsed}))


if __name__ == "__main__":
    main()
