#!/usr/bin/env python3
"""fiq's OpenCLIP and BLIP encoders beside PyTorch (open_clip_torch, transformers) on the same checkpoint.

    python3 tools/clip_reference.py family-full vit-b-32 bench-data/openclip-vit-b-32   # random weights, once
    python3 tools/clip_reference.py family-full rn50 bench-data/openclip-rn50
    python3 tools/clip_reference.py family-full blip-base bench-data/blip-base
    cargo build --release --example bench_encoder
    python3 tools/python/encoder_families.py bench-data/openclip-vit-b-32 bench-data/openclip-rn50 \
        bench-data/blip-base [--threads 2] [--batches 16] [--images 64] [--texts 128] [--repeats N]

For each model directory, fiq (examples/bench_encoder, RAYON_NUM_THREADS) and PyTorch (torch.set_num_threads)
run one after the other with the same thread count, never together. PyTorch times its model on random pixel
tensors of the model's input size (open_clip `encode_image`; BLIP `vision_model` + `vision_proj`) and on the
same captions as fiq (open_clip `encode_text` on its 77-token rows: open_clip adds its whole position
table, so it cannot take shorter rows, while fiq pads each batch to its longest caption; BLIP `text_encoder`
+ `text_proj` on rows padded to the longest, as fiq does). fiq's image numbers include its (trivial) preprocessing of in-memory images of the input size.
Prints a Markdown table per model.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_encoder import captions, fiq_side  # noqa: E402  (same captions and fiq runner as the CLIP bench)

REPO = Path(__file__).resolve().parents[2]


def openclip_side(model_dir: Path):
    import open_clip
    from safetensors.torch import load_file

    cfg = dict(json.loads((model_dir / "open_clip_config.json").read_text())["model_cfg"])
    quick_gelu = cfg.pop("quick_gelu", False)
    model = open_clip.model.CLIP(**cfg, quick_gelu=quick_gelu).eval()
    model.load_state_dict(load_file(model_dir / "open_clip_model.safetensors"))
    tokenizer = open_clip.tokenizer.SimpleTokenizer()

    def encode_texts(texts):
        # open_clip's text tower takes its whole context (77 rows, zero-padded) on every call.
        return model.encode_text(tokenizer(texts))

    size = cfg["vision_cfg"]["image_size"]
    return size, model.encode_image, encode_texts


def blip_side(model_dir: Path):
    from transformers import BlipForImageTextRetrieval, PreTrainedTokenizerFast

    model = BlipForImageTextRetrieval.from_pretrained(model_dir).eval()
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(model_dir / "tokenizer.json"), pad_token="[PAD]")

    def encode_images(pixels):
        return model.vision_proj(model.vision_model(pixel_values=pixels).last_hidden_state[:, 0])

    def encode_texts(texts):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
        hidden = model.text_encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return model.text_proj(hidden.last_hidden_state[:, 0])

    return model.config.vision_config.image_size, encode_images, encode_texts


def torch_side(model_dir: Path, batches, images, texts):
    is_blip = (model_dir / "config.json").is_file()
    size, encode_images, encode_texts = (blip_side if is_blip else openclip_side)(model_dir)
    results = []
    caps = captions(texts)
    with torch.inference_mode():
        for batch in batches:
            pixels = torch.randn(batch, 3, size, size)
            encode_images(pixels)  # warm-up
            start, done = time.perf_counter(), 0
            while done < images:
                n = min(batch, images - done)
                encode_images(pixels[:n])
                done += n
            results.append({"what": "image", "batch": batch, "items": done, "seconds": time.perf_counter() - start})
            ordered = sorted(caps, key=len)  # fiq batches texts of similar length together
            encode_texts(ordered[:batch])
            start = time.perf_counter()
            for i in range(0, len(ordered), batch):
                encode_texts(ordered[i:i + batch])
            results.append({"what": "text", "batch": batch, "items": len(ordered),
                            "seconds": time.perf_counter() - start})
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dirs", type=Path, nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", default="16")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--texts", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=1, help="alternate fiq and PyTorch this many times")
    parser.add_argument("--binary", type=Path, default=REPO / "target/release/examples/bench_encoder")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)
    print(f"cpu: {platform.processor() or platform.machine()}, threads: {args.threads}, torch {torch.__version__}")
    for model_dir in args.model_dirs:
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours += fiq_side(args.binary, model_dir, batches, args.images, args.texts, args.threads)
            theirs += torch_side(model_dir, batches, args.images, args.texts)

        def rate(runs):
            # Best of the repeats: on a shared machine the slowest runs measure the neighbours.
            return max(r["items"] / r["seconds"] for r in runs)

        print(f"\n{model_dir.name}\n")
        print("| input | batch | fiq /s | PyTorch /s | fiq / PyTorch |")
        print("|---|---:|---:|---:|---:|")
        for what in ["image", "text"]:
            for batch in batches:
                a = rate([r for r in ours if r["what"] == what and r["batch"] == batch])
                b = rate([r for r in theirs if r["what"] == what and r["batch"] == batch])
                print(f"| {what} | {batch} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")
    print(f"\nload average after the run: {os.getloadavg()}")


if __name__ == "__main__":
    main()
