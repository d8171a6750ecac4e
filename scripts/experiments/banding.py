#!/usr/bin/env python
"""Horizontal colour banding that fauve eval's grid score (luma, 2/4/8 px lattice only) misses: the
share of each channel's mid-frequency power (0.08–0.4 cycles/px) that lies on the vertical-frequency
axis (|fx| ≤ 2 bins, i.e. horizontal stripes of any period), for the output over the photo's, averaged
over four Kodak photos at 512 px. Channels: luma and two opponent chroma channels (r−g, b−(r+g)/2).

    python scripts/experiments/banding.py "runs/d16-slim-bl#great_wave" "hub_models/dumoulin-16#great_wave"
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from fauve.models import load_model
from fauve.pipeline import Stylizer

DATA = Path(os.environ.get("FAUVE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
PHOTOS = ["kodim23.png", "kodim05.png", "kodim03.png", "kodim15.png"]


def channels(rgb: np.ndarray) -> dict[str, np.ndarray]:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return {"luma": 0.299 * r + 0.587 * g + 0.114 * b, "rg": r - g, "by": b - (r + g) / 2}


def axis_share(gray: np.ndarray) -> float:
    power = np.fft.fftshift(np.abs(np.fft.fft2(gray - gray.mean())) ** 2)
    h, w = power.shape
    yy, xx = np.mgrid[:h, :w]
    radius = np.hypot((yy - h // 2) / h, (xx - w // 2) / w)
    ring = (radius > 0.08) & (radius < 0.4)
    axis = ring & (np.abs(xx - w // 2) <= 2)
    return float(power[axis].sum() / max(power[ring].sum(), 1e-12))


def main() -> None:
    for spec in sys.argv[1:]:
        path, _, style = spec.partition("#")
        stylizer = Stylizer(load_model(path).float().eval(), device="cpu")
        ratios: dict[str, list[float]] = {"luma": [], "rg": [], "by": []}
        for name in PHOTOS:
            im = Image.open(DATA / "content-eval" / name).convert("RGB")
            photo = np.asarray(im.resize((512, 512 * im.height // im.width)), dtype=np.float32) / 255
            out, ref = channels(np.asarray(stylizer.run(photo, style=style or None), dtype=np.float32)), channels(photo)
            for key in ratios:
                ratios[key].append(axis_share(out[key]) / max(axis_share(ref[key]), 1e-12))
        print(spec, {k: round(float(np.mean(v)), 2) for k, v in ratios.items()}, flush=True)


if __name__ == "__main__":
    main()
