#!/usr/bin/env python
"""Two single-style models on every Kodak photo: content and Gram style loss per photo, how many photos the second
wins, medians beside means, and the style loss per VGG layer (the photo itself as a baseline).

    scripts/experiments/style-loss-per-photo.py great_wave runs/old-great-wave hub_models/ulyanov-great-wave

Losses as `fauve eval` computes them for a ulyanov recipe (content relu2_2, style × 40 by default): the photo at
512 px (long side), the painting at 256 px; docs/training.md session 24.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

DATA = Path(os.environ.get("FAUVE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


def main() -> None:
    from fauve import losses
    from fauve.pipeline import Stylizer
    from fauve.vgg import VGG16Features

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("painting", help="file stem in the data's styles/")
    parser.add_argument("models", nargs=2, help="two model folders")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--content-layer", default="relu2_2")
    parser.add_argument("--style-weight", type=float, default=40.0)
    args = parser.parse_args()

    vgg = VGG16Features(tuple(dict.fromkeys(LAYERS + (args.content_layer,))), source="hed")

    def tensor(a) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a)[:, :, :3].copy()).permute(2, 0, 1).float().div(255)[None]

    style = Image.open(DATA / "styles" / f"{args.painting}.jpg").convert("RGB")
    style.thumbnail((256, 256))
    models = [Stylizer(m, device="cpu") for m in args.models]
    rows, layers = [], np.zeros((3, len(LAYERS)))
    photos = sorted((DATA / "content-eval").glob("kodim*.png"))
    with torch.no_grad():
        target = losses.style_grams(vgg(tensor(style)), LAYERS)
        for path in photos:
            im = Image.open(path).convert("RGB")
            im.thumbnail((args.size, args.size))
            photo_feats = vgg(tensor(im))
            row = []
            for k, picture in enumerate([np.asarray(im)] + [m.run(np.asarray(im)) for m in models]):
                feats = vgg(tensor(picture))
                grams = losses.style_grams(feats, LAYERS)
                layers[k] += [float(losses.relative_mse(grams[name], target[name])) for name in LAYERS]
                if k:
                    c = float(losses.content_loss(feats, photo_feats, (args.content_layer,)))
                    s = float(losses.gram_style_loss(feats, target, LAYERS))
                    row += [c, s, c + args.style_weight * s]
            rows.append(row)
            print(path.stem, " ".join(f"{v:.3f}" for v in row), flush=True)
    r = np.array(rows)
    print("columns: content, style, total of the first model, then of the second")
    print("median", " ".join(f"{v:.3f}" for v in np.median(r, 0)))
    print("mean  ", " ".join(f"{v:.3f}" for v in r.mean(0)))
    print(f"the second wins the style on {int((r[:, 4] < r[:, 1]).sum())} of {len(r)} photos, the total on {int((r[:, 5] < r[:, 2]).sum())}")
    for name, v in zip(["photo"] + args.models, layers / len(photos)):
        print(f"per layer {' / '.join(LAYERS)}: {name}", " / ".join(f"{x:.2f}" for x in v))


if __name__ == "__main__":
    main()
