#!/usr/bin/env python
"""The two artefact numbers of `fauve eval` (fauve.artifacts: grid ×photo, stripes ×photo) for many models
at one size, without the losses: only inference, so all shipped models fit in minutes on a CPU.

    python scripts/experiments/artifact-scores.py --size 1024 hub_models/ulyanov-starry-night "hub_models/dumoulin-16#udnie"
    python scripts/experiments/artifact-scores.py --size 1024 --all-styles hub_models/dumoulin-16
    python scripts/experiments/artifact-scores.py --size 1024 "hub_models/adain@vangogh_irises.jpg"   # a style image

Prints per model (and style) the scores over four Kodak photos and the stripe score of each photo.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from PIL import Image

from fauve.artifacts import GridMeter, StripeMeter
from fauve.models import load_model
from fauve.pipeline import Stylizer

DATA = Path(os.environ.get("FAUVE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
PHOTOS = ["kodim23.png", "kodim05.png", "kodim15.png", "kodim10.png"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model folders, FOLDER#STYLE for one style of a multi-style model, "
                    "FOLDER@PAINTING for a style image from the data's styles/ (adain, msgnet)")
    ap.add_argument("--size", type=int, default=1024, help="long side")
    ap.add_argument("--all-styles", action="store_true", help="every style of a multi-style model")
    args = ap.parse_args()
    photos = []
    for name in PHOTOS:
        im = Image.open(DATA / "content-eval" / name).convert("RGB")
        photos.append(np.asarray(im.resize((args.size, args.size * im.height // im.width), Image.LANCZOS), np.float32) / 255)
    for spec in args.models:
        spec, _, painting = spec.partition("@")
        path, _, style = spec.partition("#")
        options = {"style_image": Image.open(DATA / "styles" / painting).convert("RGB")} if painting else {}
        model = load_model(path).float().eval()
        stylizer = Stylizer(model, device="cpu", precision="fp32")
        styles = list(model.style_names) if args.all_styles and not style and not painting and model.num_styles > 1 else [style or None]
        for s in styles:
            grid, stripes, per_photo = GridMeter(), StripeMeter(), []
            for photo in photos:
                out = np.asarray(stylizer.run(photo, style=s, **options), np.float32)
                one = StripeMeter()
                one.add(out, photo)
                per_photo.append(round(one.score()["worst"], 2))
                grid.add(out, photo)
                stripes.add(out, photo)
            st = stripes.score()
            print(f"{path}{'#' + s if s else ''}{'@' + painting if painting else ''} @ {args.size}: grid {grid.score()['worst']:.2f}  stripes {st['worst']:.2f} "
                  f"(horizontal {st['horizontal']:.2f}, vertical {st['vertical']:.2f}; per photo {per_photo})", flush=True)


if __name__ == "__main__":
    main()
