#!/usr/bin/env python
"""Probe (docs/training.md, session 21): msgnet-16 distilled from dumoulin-16 on pixels, each photo crop shown
with two different paintings, plus W × the L1 between the student's and the teacher's *difference* of the two
pictures, so the gradient is about what tells the styles apart rather than what they share. Not a trainer
option: a trainer version (session 22, with the distillation's VGG features, ~1.7 s/step on one thread against
~0.6 here) did no better, and this probe levelled off at ~0.09 styles apart (docs/training.md, session 22).
``--pass-mean`` (session 22) lets the channel means past the last instance norm (MeanPassingNorm). Writes
OUT/log.csv (step, pixel L1, difference L1, seconds) and a model folder every 250 steps (with --pass-mean a
state dict, OUT/stepNNNNNN.pt, as no model class has that norm).

    FAUVE_DATA=../shared/data python scripts/experiments/msgnet-contrast-probe.py INIT OUT [--weight 4] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fauve.models import load_model
from fauve.train.data import find_images, load_style, random_crop, read_rgb

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("FAUVE_DATA", ROOT.parent / "shared" / "data"))


class MeanPassingNorm(torch.nn.Module):
    """--pass-mean: the last instance norm plus α ⊙ μ(x), α per channel from 0 (the same function at the start),
    so the channel means CoMatch sets (a linear function of the style's matrix) can reach the output's colours."""

    def __init__(self, norm: torch.nn.Module) -> None:
        super().__init__()
        self.norm = norm
        self.alpha = torch.nn.Parameter(torch.zeros(1, norm.num_features, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x) + self.alpha * x.mean(dim=(2, 3), keepdim=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("init", help="an msgnet model of dumoulin-16's sixteen paintings (e.g. runs/m16-covkd256)")
    ap.add_argument("out")
    ap.add_argument("--teacher", default=str(ROOT / "hub_models" / "dumoulin-16"))
    ap.add_argument("--weight", type=float, default=4.0, help="weight of the difference term (0: plain pixel distillation)")
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--pairs", type=int, default=2, help="photo crops per step, each shown with two paintings (batch = 2 × pairs)")
    ap.add_argument("--pass-mean", action="store_true", help="probe: let the channel means past the last instance norm (MeanPassingNorm)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    student = load_model(args.init).float().train()
    if args.pass_mean:
        student.decoder[-3] = MeanPassingNorm(student.decoder[-3])
    teacher = load_model(args.teacher).float().eval().requires_grad_(False)
    sources = json.loads((Path(args.teacher) / "config.json").read_text())["style_sources"]
    styles = [load_style(DATA / "styles" / Path(s).name, 256) for s in sources]
    photos = [t for t in (read_rgb(p) for p in find_images(DATA / "content-train")) if t is not None]
    opt = torch.optim.Adam(student.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(1)
    t0, log = time.time(), open(out / "log.csv", "a")
    for step in range(1, args.steps + 1):
        crops = [random_crop(photos[i], args.size, gen) for i in torch.randint(0, len(photos), (args.pairs,), generator=gen)]
        x = torch.stack([c for c in crops for _ in range(2)])  # (a, a, b, b, ...)
        picked = torch.cat([torch.randperm(len(styles), generator=gen)[:2] for _ in range(args.pairs)]) if args.pairs != 2 \
            else torch.randperm(len(styles), generator=gen)[:4]  # 2 pairs: the draws of sessions 21-22
        grams = torch.cat([student.style_gram(styles[i]) for i in picked.tolist()])
        with torch.no_grad():
            target = teacher(x, F.one_hot(picked, len(styles)).float())
        y = student(x, target_gram=grams)
        pixels = (y - target).abs().mean()
        difference = ((y[0::2] - y[1::2]) - (target[0::2] - target[1::2])).abs().mean()
        loss = pixels + args.weight * difference
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"{step},{pixels.item():.5f},{difference.item():.5f},{time.time() - t0:.1f}", file=log, flush=True)
        if step % 250 == 0:
            with torch.no_grad():
                student.set_style_grams(styles)
            if args.pass_mean:
                torch.save(student.state_dict(), out / f"step{step:06d}.pt")
                print(f"step {step}: |alpha| {student.decoder[-3].alpha.abs().mean().item():.4f}", flush=True)
            else:
                student.save_pretrained(out / f"step{step:06d}")


if __name__ == "__main__":
    main()
