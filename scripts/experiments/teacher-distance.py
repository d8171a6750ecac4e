#!/usr/bin/env python
"""How close a multi-style student's pictures are to its teacher's, style by style: mean |student − teacher|
(0–1 pixel values) over the sixteen styles on a few Kodak photos, and how far apart each model's styles are
(mean |Δ| over all pairs of styles), for msgnet-16 distilled from dumoulin-16 (docs/training.md, session 21).

    FAUVE_DATA=../shared/data python scripts/experiments/teacher-distance.py TEACHER STUDENT... [--size 256]
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fauve.models import load_model

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("FAUVE_DATA", ROOT.parent / "shared" / "data"))
PHOTOS = ["kodim03.png", "kodim11.png", "kodim19.png"]  # not among the eval's --max-photos 6


def pictures(model, photos: list[torch.Tensor]) -> torch.Tensor:
    """(styles, photos, 3, H, W) pictures of every stored style."""
    with torch.no_grad():
        return torch.stack([torch.cat([model(x, torch.eye(model.num_styles)[i]).clamp(0, 1) for x in photos])
                            for i in range(model.num_styles)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("teacher")
    ap.add_argument("students", nargs="+")
    ap.add_argument("--size", type=int, default=256, help="long side of the photos, px (a multiple of 4)")
    args = ap.parse_args()
    photos = []
    for name in PHOTOS:
        img = Image.open(DATA / "content-eval" / name).convert("RGB")
        w, h = img.size
        scale = args.size / max(w, h)
        img = img.resize((round(w * scale) // 4 * 4, round(h * scale) // 4 * 4), Image.LANCZOS)
        photos.append(torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255)
    teacher = load_model(args.teacher).float().eval()
    ref = pictures(teacher, photos)

    def spread(p: torch.Tensor) -> float:
        return float(np.mean([(p[i] - p[j]).abs().mean() for i, j in itertools.combinations(range(len(p)), 2)]))

    print(f"{args.teacher}: styles apart {spread(ref):.4f}")
    for path in args.students:
        student = load_model(path).float().eval()
        if list(student.style_names) != list(teacher.style_names):
            raise SystemExit(f"{path} has other styles than {args.teacher}")
        out = pictures(student, photos)
        per_style = (out - ref).abs().mean(dim=(1, 2, 3, 4))
        print(f"{path}: to the teacher {per_style.mean():.4f} (styles {per_style.min():.4f}–{per_style.max():.4f}), "
              f"styles apart {spread(out):.4f}")


if __name__ == "__main__":
    main()
