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
families ROOT  Writes the committed fixtures of the other families under ROOT (tests/fixtures): tiny
               random-weight OpenCLIP ViT (openclip-vit-tiny) and modified ResNet (openclip-rn-tiny) in
               OpenCLIP's hub layout (open_clip_config.json, open_clip_model.safetensors; tokenizer.json is a
               link to clip-tiny's, the same CLIP BPE), and a BLIP retrieval model (blip-tiny: config.json,
               model.safetensors, a small BERT WordPiece tokenizer.json), each with expected.json: reference
               ids and text embeddings, and image embeddings of the clip-tiny images under every
               preprocessing preset (shortside, targetpad, squash-clip, squash-imagenet).
family-full KIND DIR
               Writes a full-size random-weight model (KIND: vit-b-32, rn50, rn50-quickgelu, blip-base) with
               DIR/reference.json (the clip-tiny images and texts, preset shortside, or squash-clip for BLIP),
               for the manual full-size parity check and the speed benchmark. --tokenizer FILE gives the
               CLIP tokenizer.json to copy (default: clip-tiny's); BLIP gets the fixture's small vocabulary
               unless --bert-tokenizer FILE names a real one.

Environment: a virtualenv outside the repository with torch, transformers (>= 5, which has
CLIPImageProcessorPil), torchvision, pillow (< 13: see below), numpy, safetensors and open_clip_torch, e.g.
    python3 -m venv /work/venv-torch && /work/venv-torch/bin/pip install torch torchvision transformers \
        "pillow<13" numpy safetensors open_clip_torch

Pillow 13 changed its two-pass resize: when one side grows and the other shrinks (a squash resize of a tall
photo, say) and in some cases where both shrink, it runs the vertical pass first; every earlier Pillow, and
fiq, runs the horizontal pass first. The two orders round differently (by up to 10 levels on a few pixels
of the fixture's tall image), so the fixtures are made with Pillow 12.
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

# ---------------------------------------------------------------------------------------------------------
# Other families: OpenCLIP (ViT, modified ResNet) and BLIP retrieval.

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
PRESETS = ["shortside", "targetpad", "squash-clip", "squash-imagenet"]
FIXTURES = Path(__file__).resolve().parents[2] / "tests/fixtures"


def rgb_over_white(image: Image.Image) -> Image.Image:
    """transformers' convert_to_rgb: transparency composited onto white (fiq's first step too)."""
    from transformers.image_transforms import convert_to_rgb

    return image if image.mode == "RGB" else Image.fromarray(convert_to_rgb(image, return_numpy=True), "RGB")


def normalize_u8(rgb: np.ndarray, mean, std) -> np.ndarray:
    """(H, W, 3) uint8 to channel-first floats, as ToTensor + Normalize compute them."""
    import torchvision.transforms.functional as F

    tensor = F.to_tensor(np.array(rgb))
    return F.normalize(tensor, mean, std).numpy()


def preset_pixels(path: Path, size: int, preset: str) -> np.ndarray:
    """The (3, size, size) model input of one preset, computed by that preset's reference code:
    shortside -- transformers' CLIPImageProcessorPil; targetpad -- CLIP4Cir's torchvision transform;
    squash-clip -- transformers' BlipImageProcessorPil; squash-imagenet -- torchvision
    Resize((size, size), BICUBIC) with ImageNet statistics (the source study's transform)."""
    from torchvision.transforms import InterpolationMode, Resize

    image = Image.open(path)
    if preset == "shortside":
        from transformers import CLIPImageProcessorPil

        processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
        return processor(images=image, return_tensors="np")["pixel_values"][0]
    if preset == "targetpad":
        return normalize_u8(np.asarray(clip4cir_targetpad(rgb_over_white(image), size)), CLIP_MEAN, CLIP_STD)
    if preset == "squash-clip":
        from transformers import BlipImageProcessorPil

        processor = BlipImageProcessorPil(size={"height": size, "width": size})
        return processor(images=image, return_tensors="np")["pixel_values"][0]
    if preset == "squash-imagenet":
        squashed = Resize((size, size), interpolation=InterpolationMode.BICUBIC)(rgb_over_white(image))
        return normalize_u8(np.asarray(squashed), IMAGENET_MEAN, IMAGENET_STD)
    raise ValueError(preset)


def fixture_images():
    """The clip-tiny images as the reference reads them: JPEGs through Pillow's decoding (saved as
    crops/NAME.decoded.png), since JPEG decoders differ by a level or two."""
    clip_tiny = FIXTURES / "clip-tiny"
    files = json.loads((clip_tiny / "expected.json").read_text())["image_descriptions"]
    out = []
    for name in files:
        decoded = clip_tiny / "crops" / f"{name}.decoded.png"
        out.append((name, decoded if decoded.exists() else clip_tiny / "images" / name))
    return out


def perturb(module, seed):
    """Random weights large enough that tiny towers give non-trivial activations, batch-norm statistics
    away from (0, 1), every value exactly representable in float16 (what the fixture stores)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(".weight") and p.dim() == 1:  # norm scales around 1
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.add_(0.02 * torch.randn_like(p))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn_like(b))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand_like(b))
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(torch.float16).to(torch.float32))
    return module.eval()


def save_tensors(module, path: Path, dtype):
    from safetensors.torch import save_file

    tensors = {k: v.detach().to(dtype).contiguous() if v.is_floating_point() else v.contiguous()
               for k, v in module.state_dict().items()}
    save_file(tensors, path, metadata={"format": "pt"})


def image_embeddings(encode_image, size, presets):
    """`encode_image` (pixels -> unit vectors) of every fixture image under every preset."""
    images = []
    for name, path in fixture_images():
        entry = {"file": name, "embeddings": {}}
        for preset in presets:
            pixels = torch.from_numpy(preset_pixels(path, size, preset))[None]
            with torch.no_grad():
                entry["embeddings"][preset] = [float(v) for v in encode_image(pixels)[0]]
        images.append(entry)
    return images


def openclip_model(model_cfg, seed):
    import open_clip

    cfg = dict(model_cfg)
    quick_gelu = cfg.pop("quick_gelu", False)
    model = open_clip.model.CLIP(**cfg, quick_gelu=quick_gelu)
    return perturb(model, seed)


def openclip_reference(model, size, presets):
    import open_clip

    tokenizer = open_clip.tokenizer.SimpleTokenizer()
    result = {"images": image_embeddings(lambda pixels: model.encode_image(pixels, normalize=True), size, presets),
              "texts": []}
    ids = tokenizer(TEXTS)  # (n, 77), zero-padded, truncated with the end token kept
    with torch.no_grad():
        emb = model.encode_text(ids, normalize=True)
    for i, text in enumerate(TEXTS):
        row = ids[i].tolist()
        length = row.index(tokenizer.eot_token_id) + 1 if tokenizer.eot_token_id in row else len(row)
        result["texts"].append({"text": text, "ids": row[:length], "embedding": [float(v) for v in emb[i]]})
    return result


def write_openclip(out: Path, model_cfg, seed, presets, dtype, tokenizer_file: Path | None):
    import os

    model = openclip_model(model_cfg, seed)
    out.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": model_cfg, "preprocess_cfg": {"mean": CLIP_MEAN, "std": CLIP_STD}}
    (out / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_tensors(model, out / "open_clip_model.safetensors", dtype)
    link = out / "tokenizer.json"
    if link.is_symlink() or link.exists():
        link.unlink()
    if tokenizer_file is None:
        os.symlink("../clip-tiny/tokenizer.json", link)  # the same CLIP BPE; keeps the fixture small
    else:
        link.write_bytes(tokenizer_file.read_bytes())
    reference = openclip_reference(model, model_cfg["vision_cfg"]["image_size"], presets)
    return reference


def bert_tokenizer(bert_file: Path | None):
    """BLIP's tokenizer: BERT WordPiece, lower-cased, [CLS] ... [SEP], plus BLIP's [DEC] and [ENC]. Without
    a real vocabulary file (none ships offline) a small one is built: every character of the fixture
    texts, its ## continuation, and a few whole words, so the WordPiece splits are exercised."""
    from transformers import BertTokenizerFast

    if bert_file is not None:
        return BertTokenizerFast(tokenizer_file=str(bert_file))
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    chars = sorted({c for t in TEXTS for c in t.lower() if not c.isspace()} | set("abcdefghijklmnopqrstuvwxyz0123456789"))
    words = ["a", "red", "dress", "is", "dark", "##er", "and", "has", "long", "sleeves", "photo", "of", "cat", "on",
             "the", "sofa", "cafe", "naive", "cotton", "word", "blue", "extra", "spaces", "tabs"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    vocab += [w for w in words if w not in vocab]
    backend = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                    strip_accents=None, lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab.index("[CLS]")), ("[SEP]", vocab.index("[SEP]"))])
    tokenizer = BertTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", sep_token="[SEP]",
                                  pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")
    # As Salesforce's BLIP tokenizer: [DEC] is the bos token, [ENC] an extra special token.
    tokenizer.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    return tokenizer


def blip_model(config, seed):
    from transformers import BlipForImageTextRetrieval

    torch.manual_seed(seed)
    return perturb(BlipForImageTextRetrieval(config), seed)


def blip_reference(model, tokenizer, size, presets, max_length):
    import torch.nn.functional as F

    def encode_image(pixels):
        hidden = model.vision_model(pixel_values=pixels).last_hidden_state
        return F.normalize(model.vision_proj(hidden[:, 0]), dim=-1)

    result = {"images": image_embeddings(encode_image, size, presets), "texts": []}
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        hidden = model.text_encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        text_feat = F.normalize(model.text_proj(hidden[:, 0]), dim=-1)
        # The same features through the model's own ITC forward, as a check on the two lines above.
        pixels = torch.from_numpy(preset_pixels(fixture_images()[0][1], size, presets[0]))[None]
        itc = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], pixel_values=pixels,
                    use_itm_head=False).itm_score
        image_feat = torch.tensor(result["images"][0]["embeddings"][presets[0]])[None]
        assert torch.allclose(itc, image_feat @ text_feat.t(), atol=1e-5), "ITC features disagree with the model"
    for i, text in enumerate(TEXTS):
        ids = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
        result["texts"].append({"text": text, "ids": ids, "embedding": [float(v) for v in text_feat[i]]})
    return result


def blip_config(tiny: bool, vocab_size: int):
    from transformers import BlipConfig

    # Token ids as in Salesforce's config (bos = [DEC], pad = [PAD], sep = [SEP]), for our vocabulary.
    ids = dict(bos_token_id=vocab_size - 2, pad_token_id=0, sep_token_id=3 if tiny else 102)
    if not tiny:
        return BlipConfig(text_config=dict(vocab_size=vocab_size, num_attention_heads=12, **ids), vision_config=dict())
    return BlipConfig(
        text_config=dict(**ids, vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=64, encoder_hidden_size=32),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=384, patch_size=16),
        image_text_hidden_size=16,
    )


def write_blip(out: Path, tiny: bool, seed, presets, dtype, bert_file: Path | None):
    tokenizer = bert_tokenizer(bert_file)
    config = blip_config(tiny, len(tokenizer))
    model = blip_model(config, seed)
    out.mkdir(parents=True, exist_ok=True)
    config.to_json_file(out / "config.json")
    save_tensors(model, out / "model.safetensors", dtype)
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"), pretty=False)
    return blip_reference(model, tokenizer, config.vision_config.image_size, presets,
                          config.text_config.max_position_embeddings)


OPENCLIP_TINY = {
    # ViT-B-32-shaped (QuickGELU, as OpenAI's weights), tiny widths.
    "openclip-vit-tiny": dict(embed_dim=16, quick_gelu=True,
                              vision_cfg=dict(image_size=224, layers=2, width=32, patch_size=32, head_width=8),
                              text_cfg=dict(context_length=77, vocab_size=49408, width=16, heads=2, layers=2)),
    # RN50-shaped: four stages (one with two blocks, so a block without a shortcut conv is covered), GELU text.
    "openclip-rn-tiny": dict(embed_dim=16,
                             vision_cfg=dict(image_size=224, layers=[1, 2, 1, 1], width=8, head_width=16),
                             text_cfg=dict(context_length=77, vocab_size=49408, width=16, heads=2, layers=2)),
}

OPENCLIP_FULL = {
    "vit-b-32": dict(embed_dim=512, quick_gelu=True,
                     vision_cfg=dict(image_size=224, layers=12, width=768, patch_size=32),
                     text_cfg=dict(context_length=77, vocab_size=49408, width=512, heads=8, layers=12)),
    "rn50": dict(embed_dim=1024, vision_cfg=dict(image_size=224, layers=[3, 4, 6, 3], width=64, patch_size=None),
                 text_cfg=dict(context_length=77, vocab_size=49408, width=512, heads=8, layers=12)),
}
OPENCLIP_FULL["rn50-quickgelu"] = dict(OPENCLIP_FULL["rn50"], quick_gelu=True)


def write_expected(out: Path, reference, generator):
    reference["generator"] = generator
    (out / "expected.json").write_text(json.dumps(reference, indent=1) + "\n")


def cmd_families(root: Path):
    for seed, (name, cfg) in enumerate(OPENCLIP_TINY.items(), start=1):
        reference = write_openclip(root / name, cfg, seed, PRESETS, torch.float16, None)
        write_expected(root / name, reference, "tools/clip_reference.py families")
        print(f"wrote {root / name}")
    reference = write_blip(root / "blip-tiny", True, 3, PRESETS, torch.float16, None)
    write_expected(root / "blip-tiny", reference, "tools/clip_reference.py families")
    print(f"wrote {root / 'blip-tiny'}")


def cmd_family_full(kind: str, out: Path, tokenizer_file: Path | None, bert_file: Path | None):
    if kind == "blip-base":
        reference = write_blip(out, False, 0, ["squash-clip"], torch.float32, bert_file)
    else:
        tokenizer_file = tokenizer_file or FIXTURES / "clip-tiny/tokenizer.json"
        reference = write_openclip(out, OPENCLIP_FULL[kind], 0, ["shortside"], torch.float32, tokenizer_file)
    (out / "reference.json").write_text(json.dumps(reference) + "\n")
    print(f"wrote {out}")


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
    sub.add_parser("families").add_argument("root", type=Path)
    family_full = sub.add_parser("family-full")
    family_full.add_argument("kind", choices=["vit-b-32", "rn50", "rn50-quickgelu", "blip-base"])
    family_full.add_argument("out", type=Path)
    family_full.add_argument("--tokenizer", type=Path, help="CLIP tokenizer.json to copy (default: clip-tiny's)")
    family_full.add_argument("--bert-tokenizer", type=Path, help="BLIP/BERT tokenizer.json (default: the small one)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.command == "fixtures":
        cmd_fixtures(args.out)
    elif args.command == "full":
        cmd_full(args.out, args.tokenizer)
    elif args.command == "families":
        cmd_families(args.root)
    elif args.command == "family-full":
        cmd_family_full(args.kind, args.out, args.tokenizer, args.bert_tokenizer)
    else:
        cmd_check(args.model_dir, args.fixtures)


if __name__ == "__main__":
    sys.exit(main())
