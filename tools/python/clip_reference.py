#!/usr/bin/env python3
"""Reference outputs for fiq's CLIP encoder, from transformers + Pillow (optional; CI never runs this).

Subcommands
-----------
fixtures DIR   Writes the committed test fixture (tests/fixtures/clip-tiny): a tiny random-weight CLIP in the
               Hugging Face layout (config.json, model.safetensors, tokenizer.json), a few small images that
               exercise each decoding path, and expected.json with the reference tokens, embeddings and
               preprocessed crops (as lossless PNGs under crops/).
full DIR [--tokenizer FILE]
               Writes a full-size ViT-B/32 CLIP with random weights in the same layout (about 600 MB), for
               benchmarks and a manual parity check. Nothing is downloaded: weights are random, the
               tokenizer is the real CLIP BPE vocabulary that ships inside the open_clip_torch package.
check DIR      Re-encodes the fixture images/texts of tests/fixtures/clip-tiny with the model in DIR and
               writes DIR/reference.json (for a manual parity check of a full-size model).

Environment: a virtualenv outside the repository with torch, transformers (>= 5, which has
CLIPImageProcessorPil), torchvision, pillow, numpy, safetensors and open_clip_torch, e.g.
    python3 -m venv /work/venv-torch && /work/venv-torch/bin/pip install torch torchvision transformers \
        pillow numpy safetensors open_clip_torch
"""

import argparse
import gzip
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

TEXTS = [
    "a red dress",
    "is darker and has long sleeves",
    "A Photo of a CAT on the SOFA",
    "café naïve, 100% cotton!!",
    "  extra   spaces\tand\ttabs  ",
    # Longer than the 77-token context: truncation must keep the end-of-text token.
    " ".join(f"word{i} is red and blue" for i in range(40)),
]


def clip_tokenizer(tokenizer_file: Path | None = None):
    """The OpenAI CLIP BPE tokenizer, built from the vocabulary file open_clip_torch ships, or read from
    `tokenizer_file` (a tokenizer.json made earlier, say the fixture's) where open_clip is missing."""
    if tokenizer_file is not None:
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_file), pad_token="<|endoftext|>",
                                       model_max_length=77)
    import open_clip.tokenizer as oc
    from transformers import CLIPTokenizer

    bpe_path = Path(oc.default_bpe())
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    byte_symbols = list(oc.bytes_to_unicode().values())
    vocab = byte_symbols + [s + "</w>" for s in byte_symbols]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408, len(vocab)
    tokenizer = CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges, model_max_length=77)
    # The original OpenAI tokenizer must agree with the fast one on every fixture text.
    reference = oc.SimpleTokenizer()
    for text in TEXTS[:4]:
        ours = tokenizer(text)["input_ids"]
        theirs = [reference.sot_token_id] + reference.encode(text) + [reference.eot_token_id]
        assert ours == theirs, (text, ours, theirs)
    return tokenizer


def tiny_config():
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            vocab_size=49408, max_position_embeddings=77, hidden_act="quick_gelu",
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            image_size=224, patch_size=32, hidden_act="gelu", layer_norm_eps=1e-6,
        ),
        projection_dim=16,
    )


def vit_b32_config():
    from transformers import CLIPConfig

    return CLIPConfig(text_config=dict(), vision_config=dict(), projection_dim=512)


def random_model(config, seed, dtype):
    """A CLIPModel whose random weights are exactly representable in `dtype` (what gets saved)."""
    from transformers import CLIPModel

    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            # Larger than the default init so the tiny towers produce non-trivial activations.
            if p.dim() >= 1 and p.shape[0] > 1:
                p.add_(torch.randn_like(p) * 0.02)
            p.copy_(p.to(dtype).to(torch.float32))
    return model


def save_model(model, tokenizer, out: Path, dtype):
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(out / "config.json")
    tensors = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"), pretty=False)


def make_images(out: Path):
    """Small synthetic images, one per decoding path; smooth so the PNGs stay small."""
    out.mkdir(parents=True, exist_ok=True)

    def scene(w, h, seed):
        rng = np.random.default_rng(seed)
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        r = 127 + 120 * np.sin(x / (7 + seed) + y / 23)
        g = 127 + 120 * np.cos(y / (11 + seed) - x / 31)
        b = 255 * (x + y) / (w + h)
        img = Image.fromarray(np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(img)
        for _ in range(4):
            x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
            draw.rectangle([x0, y0, x0 + w // 5, y0 + h // 6], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        return img

    files = {}
    scene(320, 200, 1).save(out / "landscape.jpg", quality=90)
    files["landscape.jpg"] = "RGB JPEG, wider than tall"
    scene(150, 263, 2).convert("L").save(out / "portrait_gray.png")
    files["portrait_gray.png"] = "8-bit grayscale PNG, odd crop margin"
    rgba = scene(240, 181, 3).convert("RGBA")
    alpha = np.tile(np.linspace(0, 255, 240).astype(np.uint8), (181, 1))
    rgba.putalpha(Image.fromarray(alpha, "L"))
    rgba.save(out / "alpha.png")
    files["alpha.png"] = "RGBA PNG, alpha ramp from transparent to opaque"
    scene(37, 21, 4).save(out / "tiny.png")
    files["tiny.png"] = "37x21 RGB PNG, upscaled"
    scene(200, 410, 5).save(out / "tall.webp", lossless=True)
    files["tall.webp"] = "lossless WebP, aspect ratio 2.05 (targetpad pads it)"
    scene(90, 90, 6).quantize(colors=32).save(out / "palette.png")
    files["palette.png"] = "palette PNG, square"
    return files


def make_cmyk(image_dir: Path, crops_dir: Path):
    """A CMYK JPEG (not in the embedding parity set: JPEG decoders may differ by a level or two) and
    Pillow's RGB rendering of it, for a tolerance check of fiq's CMYK decoding."""
    rgb = Image.new("RGB", (64, 48))
    draw = ImageDraw.Draw(rgb)
    for i, colour in enumerate([(220, 30, 30), (30, 200, 40), (20, 40, 210), (240, 240, 240)]):
        draw.rectangle([i * 16, 0, i * 16 + 15, 47], fill=colour)
    rgb.convert("CMYK").save(image_dir / "cmyk.jpg", quality=95)
    Image.open(image_dir / "cmyk.jpg").convert("RGB").save(crops_dir / "cmyk.jpg.pil-rgb.png")


def clip4cir_targetpad(image: Image.Image, size: int, ratio: float = 1.25) -> Image.Image:
    """CLIP4Cir's targetpad transform with torchvision on a PIL image, returned before ToTensor."""
    import torchvision.transforms.functional as F
    from torchvision.transforms import CenterCrop, InterpolationMode, Resize

    image = image.convert("RGB")  # fiq converts first (see preprocess.rs); identical for opaque images
    w, h = image.size
    if max(w, h) / min(w, h) >= ratio:
        scaled = max(w, h) / ratio
        hp, vp = max(int((scaled - w) / 2), 0), max(int((scaled - h) / 2), 0)
        image = F.pad(image, [hp, vp, hp, vp], 0, "constant")
    image = Resize(size, interpolation=InterpolationMode.BICUBIC)(image)
    return CenterCrop(size)(image)


def to_uint8_crop(pixel_values: np.ndarray) -> np.ndarray:
    """Inverts rescale+normalize of a (3, H, W) CLIP input back to the uint8 crop it came from."""
    mean = np.array(CLIP_MEAN, np.float32)[:, None, None]
    std = np.array(CLIP_STD, np.float32)[:, None, None]
    u8 = np.round((pixel_values * std + mean) * 255.0)
    assert np.abs((pixel_values * std + mean) * 255.0 - u8).max() < 1e-3, "not a uint8 image"
    return u8.clip(0, 255).astype(np.uint8).transpose(1, 2, 0)


def normalized(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def reference_outputs(model, tokenizer, image_dir: Path, image_files, crops_dir: Path | None):
    from transformers import CLIPImageProcessorPil

    size = model.config.vision_config.image_size
    processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    result = {"images": [], "texts": []}
    for name in image_files:
        pil = Image.open(image_dir / name)
        pixel_values = processor(images=pil, return_tensors="np")["pixel_values"][0]
        entry = {"file": name, "mode": pil.mode}
        if crops_dir is not None:
            crops_dir.mkdir(parents=True, exist_ok=True)
            crop = to_uint8_crop(pixel_values)
            Image.fromarray(crop, "RGB").save(crops_dir / f"{name}.shortside.png")
            target = np.asarray(clip4cir_targetpad(Image.open(image_dir / name), size))
            Image.fromarray(target, "RGB").save(crops_dir / f"{name}.targetpad.png")
            entry["pixel_values_head"] = [float(v) for v in pixel_values.reshape(-1)[:8]]
            if pil.format == "JPEG":
                # JPEG decoders (libjpeg-turbo here, zune-jpeg in fiq) differ by a few levels; the exact
                # checks start from Pillow's decoded pixels instead.
                Image.open(image_dir / name).save(crops_dir / f"{name}.decoded.png")
        with torch.no_grad():
            emb = model.get_image_features(pixel_values=torch.from_numpy(pixel_values)[None]).pooler_output
        entry["embedding"] = [float(v) for v in normalized(emb)[0]]
        result["images"].append(entry)

    batch = tokenizer(TEXTS, padding="max_length", truncation=True, max_length=77, return_tensors="pt")
    with torch.no_grad():
        emb = normalized(model.get_text_features(input_ids=batch["input_ids"]).pooler_output)
    for i, text in enumerate(TEXTS):
        ids = tokenizer(text, truncation=True, max_length=77)["input_ids"]
        result["texts"].append({"text": text, "ids": ids, "embedding": [float(v) for v in emb[i]]})
    return result


def cmd_fixtures(out: Path):
    tokenizer = clip_tokenizer()
    # Stored as float16 to keep the fixture small; the reference computes in float32 from the same
    # (float16-representable) values, exactly what fiq does after widening them on load.
    model = random_model(tiny_config(), seed=0, dtype=torch.float16)
    save_model(model, tokenizer, out, torch.float16)
    files = make_images(out / "images")
    reference = reference_outputs(model, tokenizer, out / "images", list(files), out / "crops")
    make_cmyk(out / "images", out / "crops")
    reference["image_descriptions"] = files
    reference["generator"] = "tools/python/clip_reference.py fixtures"
    (out / "expected.json").write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {out}")


def cmd_full(out: Path, tokenizer_file: Path | None):
    tokenizer = clip_tokenizer(tokenizer_file)
    model = random_model(vit_b32_config(), seed=0, dtype=torch.float32)
    save_model(model, tokenizer, out, torch.float32)
    print(f"wrote {out}")


def cmd_check(model_dir: Path, fixture_dir: Path):
    from transformers import CLIPModel

    tokenizer = clip_tokenizer(model_dir / "tokenizer.json")
    model = CLIPModel.from_pretrained(model_dir).eval()
    files = json.loads((fixture_dir / "expected.json").read_text())["image_descriptions"]
    reference = reference_outputs(model, tokenizer, fixture_dir / "images", list(files), None)
    (model_dir / "reference.json").write_text(json.dumps(reference) + "\n")
    print(f"wrote {model_dir / 'reference.json'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fixtures").add_argument("out", type=Path)
    full = sub.add_parser("full")
    full.add_argument("out", type=Path)
    full.add_argument("--tokenizer", type=Path, help="copy this tokenizer.json instead of building one (no open_clip)")
    check = sub.add_parser("check")
    check.add_argument("model_dir", type=Path)
    check.add_argument("--fixtures", type=Path, default=Path(__file__).resolve().parents[2] / "tests/fixtures/clip-tiny")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.command == "fixtures":
        cmd_fixtures(args.out)
    elif args.command == "full":
        cmd_full(args.out, args.tokenizer)
    else:
        cmd_check(args.model_dir, args.fixtures)


if __name__ == "__main__":
    sys.exit(main())
