#!/usr/bin/env python
"""Probe (docs/training.md, session 22): can msgnet-16 paint one photo crop sixteen different ways? The student
is trained on the teacher's sixteen pictures of a few fixed crops (``--crops N``: the centre crops of N training
photos, 1 by default) with pixel L1 + W × the L1 of the difference between two paintings' pictures (as
msgnet-contrast-probe.py). Every ``--every`` steps it prints, on the first crop, the mean |student − teacher| and
how far apart the student's and the teacher's sixteen pictures are (mean |Δ| over the 120 pairs). If even one
crop cannot be fitted, the style path is what limits the net, not the photos seen; ``--save DIR`` writes the
student for teacher-distance.py on photos it has not seen.

    FAUVE_DATA=../shared/data python scripts/experiments/msgnet-one-crop-probe.py INIT [--crops 1] [--steps 1500] [--save DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from fauve.models import load_model
from fauve.train.data import find_images, load_style, read_rgb

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("FAUVE_DATA", ROOT.parent / "shared" / "data"))


def spread(pictures: torch.Tensor) -> float:
    return sum((pictures[i] - pictures[j]).abs().mean().item() for i, j in itertools.combinations(range(len(pictures)), 2)) / (
        len(pictures) * (len(pictures) - 1) / 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("init")
    ap.add_argument("--teacher", default=str(ROOT / "hub_models" / "dumoulin-16"))
    ap.add_argument("--crops", type=int, default=1, help="how many training photos (evenly spread over content-train) give a crop")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--weight", type=float, default=4.0)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--save", default=None, help="write the fitted student here at the end")
    args = ap.parse_args()
    torch.set_num_threads(1)
    student = load_model(args.init).float().train()
    teacher = load_model(args.teacher).float().eval().requires_grad_(False)
    sources = json.loads((Path(args.teacher) / "config.json").read_text())["style_sources"]
    styles = [load_style(DATA / "styles" / Path(s).name, 256) for s in sources]
    paths = find_images(DATA / "content-train")
    crops = []
    for path in paths[:: max(1, len(paths) // args.crops)][: args.crops]:
        photo = read_rgb(path)
        h, w = photo.shape[-2:]
        crops.append(photo[:, (h - args.size) // 2:(h + args.size) // 2, (w - args.size) // 2:(w + args.size) // 2])
    crops = torch.stack(crops)
    n = len(styles)
    with torch.no_grad():
        targets = torch.stack([teacher(c[None].expand(n, -1, -1, -1), torch.eye(n)) for c in crops])  # (crops, styles, 3, H, W)
    crop = crops[:1]
    print(f"teacher: styles apart {spread(targets[0]):.4f}", flush=True)
    opt = torch.optim.Adam(student.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(1)
    for step in range(args.steps + 1):
        if step % args.every == 0:
            with torch.no_grad():
                grams = torch.cat([student.style_gram(s) for s in styles])
                out = torch.cat([student(crop, target_gram=g[None]) for g in grams])
            print(f"step {step}: to the teacher {(out - targets[0]).abs().mean().item():.4f}, styles apart {spread(out):.4f}", flush=True)
        if step == args.steps:
            break
        picked = torch.randperm(n, generator=gen)[:4]
        a, b = torch.randint(0, len(crops), (2,), generator=gen).tolist()  # pairs share a crop: (a, a, b, b)
        grams = torch.cat([student.style_gram(styles[i]) for i in picked.tolist()])
        y = student(crops[[a, a, b, b]], target_gram=grams)
        target = targets[[a, a, b, b], picked]
        pixels = (y - target).abs().mean()
        difference = ((y[0::2] - y[1::2]) - (target[0::2] - target[1::2])).abs().mean()
        opt.zero_grad()
        (pixels + args.weight * difference).backward()
        opt.step()
    if args.save:
        with torch.no_grad():
            student.set_style_grams(styles)
        student.save_pretrained(args.save)


if __name__ == "__main__":
    main()
