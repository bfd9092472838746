#!/usr/bin/env python3
"""Writes the texts `fiq-index train --text-features` needs for a FashionIQ tree.

    python3 tools/bench/fashioniq_texts.py ROOT OUT_DIR

OUT_DIR gets `texts.txt` (one text per line, the input of `fiq-index embed --texts`) and `texts.json` (the
same texts as a JSON array, the cache's key list). The texts are CLIP4Cir's four training variants of every
train triplet ("C1 and c2", "C2 and c1", "C1", "C2") and the evaluation text of every val triplet, built as
src/fashioniq/captions.rs builds them; `fiq-index train` names any text it cannot find. Standard library only.
"""

import json
import sys
from pathlib import Path

CATEGORIES = ["dress", "shirt", "toptee"]
STRIP = ".?, \t\r\n\f\v"


def clean(caption):
    return caption.strip(STRIP)


def join(first, second):
    first, second = clean(first), clean(second)
    if first and second:
        return f"{first.capitalize()} and {second}"
    return (first or second).capitalize()


def main():
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    texts = set()
    for category in CATEGORIES:
        for split in ["train", "val"]:
            path = root / "captions" / f"cap.{category}.{split}.json"
            for triplet in json.loads(path.read_text()):
                c1, c2 = triplet["captions"]
                if split == "train":
                    texts.update([join(c1, c2), join(c2, c1), join(c1, ""), join(c2, "")])
                else:
                    texts.add(join(c1, c2))
    texts = sorted(t for t in texts if t)
    out.mkdir(parents=True, exist_ok=True)
    (out / "texts.txt").write_text("".join(t + "\n" for t in texts))
    (out / "texts.json").write_text(json.dumps(texts))
    print(f"{len(texts)} texts -> {out}")


if __name__ == "__main__":
    main()
