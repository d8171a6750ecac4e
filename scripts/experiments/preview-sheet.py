#!/usr/bin/env python
"""The README's pictures of the shipped models: Kodak photos (first column) and each model's output,
with the painting's thumbnail on top.

    scripts/experiments/preview-sheet.py [-o docs/img/ulyanov-previews.jpg]          # every hub_models/ulyanov-*
    scripts/experiments/preview-sheet.py -o docs/img/more-models.jpg johnson-starry-night dumoulin-16#udnie \
        adain#the_scream adain@vangogh_irises.jpg                                       # NAME, NAME#STYLE, NAME@PAINTING
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("FAUVE_DATA", ROOT.parent / "shared" / "data"))
PHOTOS = ["kodim23.png", "kodim05.png", "kodim15.png"]
TILE = (288, 192)


def main() -> None:
    from fauve.pipeline import Stylizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", default=str(ROOT / "docs" / "img" / "ulyanov-previews.jpg"))
    parser.add_argument("models", nargs="*", help="hub_models folder names; NAME#STYLE picks a named style, NAME@FILE "
                        "gives a painting from the data's styles/ (msgnet, adain: unseen styles)")
    parser.add_argument("--stylize-at", type=int, default=TILE[0], metavar="PX",
                        help="long side at which the photos are stylized before shrinking to the tile (default: the tile's, "
                             f"{TILE[0]} px; adain's strokes are sized for ~512 px pictures)")
    args = parser.parse_args()
    models = args.models or sorted(p.name for p in (ROOT / "hub_models").glob("ulyanov-*") if (p / "config.json").is_file())
    big = (args.stylize_at, args.stylize_at * TILE[1] // TILE[0])
    photos = [np.asarray(Image.open(DATA / "content-eval" / name).convert("RGB").resize(big, Image.LANCZOS)) for name in PHOTOS]
    head = 120
    sheet = Image.new("RGB", (TILE[0] * (len(models) + 1), head + TILE[1] * len(photos)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((8, head - 20), "photo (Kodak)", fill="black")
    for j, spec in enumerate(models, start=1):
        name, _, painting = spec.partition("@")
        name, _, style = name.partition("#")
        folder = ROOT / "hub_models" / name
        options: dict = {}
        if painting:
            thumb = DATA / "styles" / painting
            options["style_image"] = Image.open(thumb).convert("RGB")
            seen = painting in json.loads((folder / "config.json").read_text()).get("style_sources", [])
            label = f"{name} ({'' if seen else 'unseen '}image: {Path(painting).stem})"
        elif style:
            thumb, options["style"], label = folder / "thumbnails" / f"{style}.jpg", style, f"{name}/{style}"
        else:
            thumb, label = next((folder / "thumbnails").glob("*.jpg")), name
        with Image.open(thumb) as im:
            im.thumbnail((TILE[0] - 10, head - 28))
            sheet.paste(im, (j * TILE[0] + (TILE[0] - im.width) // 2, 2))
        draw.text((j * TILE[0] + 8, head - 20), label[:44], fill="black")
        stylizer = Stylizer(str(folder), device="cpu")
        for i, photo in enumerate(photos):
            picture = Image.fromarray(np.asarray(stylizer.run(photo, **options)))
            sheet.paste(picture.resize(TILE, Image.LANCZOS), (j * TILE[0], head + i * TILE[1]))
    for i, photo in enumerate(photos):
        sheet.paste(Image.fromarray(photo).resize(TILE, Image.LANCZOS), (0, head + i * TILE[1]))
    sheet.save(args.out, optimize=True, **({"quality": 90} if args.out.lower().endswith((".jpg", ".jpeg")) else {}))
    print(args.out)


if __name__ == "__main__":
    main()
