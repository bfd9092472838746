#!/usr/bin/env python3
"""fiq's embeddings on a device against transformers' reference embeddings of the fixture inputs.

    python3 tools/python/gpu_parity.py --bin FIQ_INDEX --model DIR --reference JSON [--device cuda:0]
        [--precision f32|f16|bf16] [--tolerance T] [--against reference|cpu]

JSON is a model's reference file: tests/fixtures/clip-tiny/expected.json for the fixture model, or the
reference.json that `tools/python/clip_reference.py check DIR` writes beside a full-size model. The inputs are
the fixture's images (JPEGs through Pillow's decoded PNG under crops/, as the Rust parity test does, since
JPEG decoders differ by a level or two) and its texts. Runs `fiq-index embed` once for the images and once
for the texts, prints the largest absolute difference per input, and exits 1 when one exceeds the
tolerance (default: 1e-4 for f32, as the CPU parity test, 5e-2 for half precisions).

It also embeds the same inputs with fiq on the CPU (f32) and prints that difference too: `--against cpu`
judges by it, which isolates the device from the reference's own version (transformers' image processor
has changed between releases, for RGBA input say, and the reference is made where the check runs).
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parents[2] / "tests/fixtures/clip-tiny"


def reference_input(name: str) -> Path:
    if name.endswith(".jpg"):
        return FIXTURES / "crops" / f"{name}.decoded.png"
    return FIXTURES / "images" / name


def embed(binary, model, device, precision, out, inputs):
    command = [str(binary), "embed", "--model", str(model), "--device", device, "--precision", precision,
               "--quiet", "--out", str(out)] + inputs
    subprocess.run(command, check=True)
    return np.load(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", type=Path, required=True, help="fiq-index built with --features cuda")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--precision", default="f32", choices=["f32", "f16", "bf16"])
    parser.add_argument("--tolerance", type=float)
    parser.add_argument("--against", default="reference", choices=["reference", "cpu"],
                        help="what the verdict compares with: transformers' reference, or fiq on the CPU")
    args = parser.parse_args()
    tolerance = args.tolerance or (1e-4 if args.precision == "f32" else 5e-2)
    reference = json.loads(args.reference.read_text())

    def fiq_embeddings(device, precision):
        with tempfile.TemporaryDirectory() as tmp:
            images = [str(reference_input(entry["file"])) for entry in reference["images"]]
            image_rows = embed(args.bin, args.model, device, precision, Path(tmp) / "images.npy",
                               ["--images"] + images)
            texts_file = Path(tmp) / "texts.txt"
            texts_file.write_text("".join(entry["text"] + "\n" for entry in reference["texts"]))
            text_rows = embed(args.bin, args.model, device, precision, Path(tmp) / "texts.npy",
                              ["--texts", str(texts_file)])
        return list(image_rows) + list(text_rows)

    ours = fiq_embeddings(args.device, args.precision)
    on_cpu = fiq_embeddings("cpu", "f32")
    names = [e["file"] for e in reference["images"]] + [repr(e["text"][:40]) for e in reference["texts"]]
    expected = [e["embedding"] for e in reference["images"]] + [e["embedding"] for e in reference["texts"]]
    print(f"{args.model.name} on {args.device}, {args.precision}: max abs difference per input")
    print(f"  {'input':<44} {'transformers':>12} {'fiq on cpu':>12}")
    worst = 0.0
    for name, mine, theirs, cpu in zip(names, ours, expected, on_cpu):
        diff = float(np.max(np.abs(mine - np.asarray(theirs, dtype=np.float32))))
        diff_cpu = float(np.max(np.abs(mine - cpu)))
        worst = max(worst, diff if args.against == "reference" else diff_cpu)
        print(f"  {name:<44} {diff:>12.2e} {diff_cpu:>12.2e}")
    verdict = "PASS" if worst <= tolerance else "FAIL"
    print(f"{verdict}: worst {worst:.2e} against {args.against}, tolerance {tolerance:.0e}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
