"""Zoomed crops of several models' outputs on one photo, side by side, each labelled with its grid
score on that picture (fauve.artifacts): the figure for checkerboard and hatching comparisons.

    python scripts/experiments/grid-crops.py ../shared/data/content-eval/kodim15.png --size 1024 \
        --box 380,250,560,430 --zoom 2 -o docs/img/grid-fix-crops.jpg \
        hub_models/ulyanov-starry-night runs/usn-bilinear

A model argument may carry a label after '=' (``runs/usn-bilinear=bilinear``) and a style after '#'.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fauve.artifacts import GridMeter
from fauve.evaluate import load_tensor, to_numpy
from fauve.models import load_model
from fauve.pipeline import Stylizer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photo")
    p.add_argument("models", nargs="+", help="model folders, optionally FOLDER#STYLE=LABEL")
    p.add_argument("--size", type=int, default=1024, help="long side the photo is stylized at")
    p.add_argument("--box", required=True, help="crop box left,top,right,bottom in the stylized picture")
    p.add_argument("--zoom", type=int, default=2, help="nearest-neighbour enlargement of the crops")
    p.add_argument("-o", "--out", required=True)
    args = p.parse_args()

    photo = to_numpy(load_tensor(args.photo, args.size))
    box = tuple(int(v) for v in args.box.split(","))
    font = ImageFont.load_default(size=14)
    tiles = []
    for spec in ["photo=photo", *args.models]:
        ref, _, label = spec.partition("=")
        folder, _, style = ref.partition("#")
        if folder == "photo":
            out = photo
        else:
            out = Stylizer(load_model(folder).float().eval(), device="cpu").run(photo, style=style or None)
        meter = GridMeter()
        meter.add(out, photo)
        grid = meter.score()["worst"]
        crop = Image.fromarray((np.clip(out, 0, 1) * 255).round().astype(np.uint8)).crop(box)
        crop = crop.resize((crop.width * args.zoom, crop.height * args.zoom), Image.NEAREST)
        tile = Image.new("RGB", (crop.width, crop.height + 22), "white")
        tile.paste(crop, (0, 22))
        name = label or folder.rstrip("/").rsplit("/", 1)[-1]
        ImageDraw.Draw(tile).text((2, 3), name if folder == "photo" else f"{name}  grid {grid:.1f}", fill="black", font=font)
        tiles.append(tile)
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 6 * (len(tiles) - 1), tiles[0].height), "white")
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.width + 6
    sheet.save(args.out, quality=90)
    print(args.out, sheet.size)


if __name__ == "__main__":
    main()
