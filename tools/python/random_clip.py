#!/usr/bin/env python3
"""A CLIP of ViT-B/32's shapes with random weights, in the Hugging Face layout fiq and transformers load:
config.json, model.safetensors, tokenizer.json (CLIP's BPE, copied from fiq's default model). For speed
benchmarks only: the weights are random, so the vectors mean nothing, but every layer costs what it costs.

    python3 tools/python/random_clip.py OUT_DIR [--seed 0]
"""
import argparse
import shutil
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    config = CLIPConfig()  # openai/clip-vit-base-patch32's shapes: text 512 x 12 layers, vision 768 x 12, projection 512
    model = CLIPModel(config).eval()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    repo = Path(__file__).resolve().parents[2]
    shutil.copy(repo / "models/fiq-default/tokenizer.json", args.out / "tokenizer.json")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
