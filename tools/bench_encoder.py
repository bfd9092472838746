#!/usr/bin/env python3
"""fiq's CLIP encoder beside PyTorch (transformers CLIPModel) on the same checkpoint, in one run.

    python3 tools/clip_reference.py full bench-data/vit-b32          # random-weight ViT-B/32, once
    cargo build --release --example bench_encoder
    python3 tools/bench_encoder.py bench-data/vit-b32 [--threads 2] [--batches 16,64] [--images 128] [--texts 256]
        [--repeats N] [--binary target/release/examples/bench_encoder]

Both sides use the same number of threads (torch.set_num_threads, RAYON_NUM_THREADS) and run one after
the other, never together. PyTorch times get_image_features on random 224x224 pixel tensors and
get_text_features on the same captions, padded to the longest in each batch as fiq does; fiq's image
numbers include its (trivial, identity-resize) preprocessing of in-memory 224x224 images.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def captions(count):
    # Must equal `captions` in examples/bench_encoder.rs.
    colours = ["red", "navy blue", "black", "white", "floral", "striped", "pastel pink", "olive green"]
    changes = [
        "is darker and has long sleeves",
        "is more casual and shorter",
        "has a v-neck and no pattern",
        "is a maxi dress with thin straps and a belt at the waist",
        "is less formal, lighter in colour and has a graphic print of a band logo on the front",
    ]
    return [f"{changes[i % len(changes)]} and is {colours[(i // 5) % len(colours)]}" for i in range(count)]


def torch_side(model_dir, batches, images, texts):
    from transformers import CLIPModel, PreTrainedTokenizerFast

    model = CLIPModel.from_pretrained(model_dir).eval()
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(Path(model_dir) / "tokenizer.json"),
                                        pad_token="<|endoftext|>")
    size = model.config.vision_config.image_size
    results = []
    with torch.inference_mode():
        for batch in batches:
            pixels = torch.randn(batch, 3, size, size)
            model.get_image_features(pixel_values=pixels)  # warm-up
            start = time.perf_counter()
            done = 0
            while done < images:
                n = min(batch, images - done)
                model.get_image_features(pixel_values=pixels[:n])
                done += n
            results.append({"what": "image", "batch": batch, "items": done, "seconds": time.perf_counter() - start})

            caps = captions(texts)
            # fiq sorts texts by length before batching; do the same so both pad alike.
            caps.sort(key=lambda c: len(tokenizer(c)["input_ids"]))
            first = tokenizer(caps[:batch], padding=True, return_tensors="pt")
            model.get_text_features(input_ids=first["input_ids"])
            start = time.perf_counter()
            for i in range(0, len(caps), batch):
                enc = tokenizer(caps[i:i + batch], padding=True, truncation=True, max_length=77, return_tensors="pt")
                model.get_text_features(input_ids=enc["input_ids"])
            results.append({"what": "text", "batch": batch, "items": len(caps), "seconds": time.perf_counter() - start})
    return results


def fiq_side(binary, model_dir, batches, images, texts, threads):
    if not binary.exists():
        sys.exit(f"{binary} missing: cargo build --release --example bench_encoder")
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(
        [str(binary), str(model_dir), "--batches", ",".join(map(str, batches)), "--images", str(images),
         "--texts", str(texts), "--json"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", default="16,64")
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--binary", type=Path, default=REPO / "target/release/examples/bench_encoder",
                        help="the built bench_encoder example")
    parser.add_argument("--repeats", type=int, default=1, help="alternate fiq and PyTorch this many times")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)

    ours, theirs = [], []
    for _ in range(args.repeats):
        ours += fiq_side(args.binary, args.model_dir, batches, args.images, args.texts, args.threads)
        theirs += torch_side(args.model_dir, batches, args.images, args.texts)

    def rate(runs):
        # Best of the repeats: on a shared machine the slowest runs measure the neighbours.
        return max(r["items"] / r["seconds"] for r in runs)
    print(f"threads: {args.threads}, torch {torch.__version__}, {platform.processor() or platform.machine()}")
    print("| input | batch | fiq (candle) /s | PyTorch /s | fiq / PyTorch |")
    print("|---|---:|---:|---:|---:|")
    for what in ["image", "text"]:
        for batch in batches:
            a = rate([r for r in ours if r["what"] == what and r["batch"] == batch])
            b = rate([r for r in theirs if r["what"] == what and r["batch"] == batch])
            print(f"| {what} | {batch} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")
    print(f"load average after the run: {os.getloadavg()}")


if __name__ == "__main__":
    main()
