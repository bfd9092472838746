#!/usr/bin/env python3
"""fiq's CLIP encoder beside PyTorch (transformers CLIPModel) on the same checkpoint, in one run.

    python3 tools/python/clip_reference.py full bench-data/vit-b32          # random-weight ViT-B/32, once
    cargo build --release --example bench_encoder
    python3 tools/python/bench_encoder.py bench-data/vit-b32 [--threads 2] [--batches 16,64] [--images 128] [--texts 256]
        [--repeats N] [--binary target/release/examples/bench_encoder]
        [--device cuda --precision f16]      # on a GPU: fiq built with --features cuda

Both sides use the same number of threads (torch.set_num_threads, RAYON_NUM_THREADS) and run one after
the other, never together. PyTorch times get_image_features on random 224x224 pixel tensors and
get_text_features on the same captions, padded to the longest in each batch as fiq does; fiq's image
numbers include its (trivial, identity-resize) preprocessing of in-memory 224x224 images.

On a GPU (--device cuda) both sides upload float32 pixels from host memory every batch and cast them on
the device (what fiq does), and PyTorch synchronizes before its clock stops; the table then also gives
fiq's time inside the model alone (upload, forward, read-back), without its CPU preprocessing.
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

REPO = Path(__file__).resolve().parents[2]


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


DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def torch_side(model_dir, batches, images, texts, device="cpu", precision="f32"):
    from transformers import CLIPModel, PreTrainedTokenizerFast

    dtype = DTYPES[precision]
    model = CLIPModel.from_pretrained(model_dir).eval().to(device=device, dtype=dtype)

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def image_features(pixels):
        out = model.get_image_features(pixel_values=pixels.to(device).to(dtype))
        return getattr(out, "pooler_output", out).float().cpu()

    def text_features(ids):
        out = model.get_text_features(input_ids=ids.to(device))
        return getattr(out, "pooler_output", out).float().cpu()

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(Path(model_dir) / "tokenizer.json"),
                                        pad_token="<|endoftext|>")
    size = model.config.vision_config.image_size
    results = []
    with torch.inference_mode():
        for batch in batches:
            pixels = torch.randn(batch, 3, size, size)
            image_features(pixels)  # warm-up
            sync()
            start = time.perf_counter()
            done = 0
            while done < images:
                n = min(batch, images - done)
                image_features(pixels[:n])
                done += n
            sync()
            results.append({"what": "image", "batch": batch, "items": done, "seconds": time.perf_counter() - start})

            caps = captions(texts)
            # fiq sorts texts by length before batching; do the same so both pad alike.
            caps.sort(key=lambda c: len(tokenizer(c)["input_ids"]))
            first = tokenizer(caps[:batch], padding=True, return_tensors="pt")
            text_features(first["input_ids"])
            sync()
            start = time.perf_counter()
            for i in range(0, len(caps), batch):
                enc = tokenizer(caps[i:i + batch], padding=True, truncation=True, max_length=77, return_tensors="pt")
                text_features(enc["input_ids"])
            sync()
            results.append({"what": "text", "batch": batch, "items": len(caps), "seconds": time.perf_counter() - start})
    return results


def fiq_side(binary, model_dir, batches, images, texts, threads, device="cpu", precision="f32"):
    if not binary.exists():
        sys.exit(f"{binary} missing: cargo build --release --example bench_encoder")
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(
        [str(binary), str(model_dir), "--batches", ",".join(map(str, batches)), "--images", str(images),
         "--texts", str(texts), "--json", "--device", device, "--precision", precision],
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
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (GPU 0) for both sides")
    parser.add_argument("--precision", default="f32", choices=sorted(DTYPES), help="weights and activations")
    args = parser.parse_args()
    fiq_device = "cuda:0" if args.device == "cuda" else args.device
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)

    ours, theirs = [], []
    for _ in range(args.repeats):
        ours += fiq_side(args.binary, args.model_dir, batches, args.images, args.texts, args.threads,
                         fiq_device, args.precision)
        theirs += torch_side(args.model_dir, batches, args.images, args.texts, args.device, args.precision)

    def rate(runs):
        # Best of the repeats: on a shared machine the slowest runs measure the neighbours.
        return max(r["items"] / r["seconds"] for r in runs)
    def model_rate(runs):
        return max(r["items"] / r["model_seconds"] for r in runs if r.get("model_seconds"))

    where = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or platform.machine()
    print(f"device: {args.device} ({where}), precision {args.precision}, threads: {args.threads}, torch {torch.__version__}")
    print("| input | batch | fiq (candle) /s | fiq model alone /s | PyTorch /s | fiq / PyTorch |")
    print("|---|---:|---:|---:|---:|---:|")
    for what in ["image", "text"]:
        for batch in batches:
            mine = [r for r in ours if r["what"] == what and r["batch"] == batch]
            a = rate(mine)
            b = rate([r for r in theirs if r["what"] == what and r["batch"] == batch])
            print(f"| {what} | {batch} | {a:.1f} | {model_rate(mine):.1f} | {b:.1f} | {a / b:.2f}x |")
    print(f"load average after the run: {os.getloadavg()}")


if __name__ == "__main__":
    main()
