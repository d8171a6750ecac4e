"""How far apart a multi-style model's styles are: mean |Δ| (0–1 pixel values) between the output for each
style and the output for the first, and between that first output and the photo (docs/training.md, sessions 5,
13, 16). A model that ignores its style input gives ~0 for the first number.

    python scripts/experiments/msgnet-separation.py MODEL... [--photo core/samples/parrots.jpg] [--size 256]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from fauve.imageio import read_image
from fauve.models import load_model
from fauve.pipeline import Stylizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--photo", default="core/samples/parrots.jpg")
    ap.add_argument("--size", type=int, default=256, help="long side of the photo, px")
    args = ap.parse_args()
    torch.manual_seed(0)
    photo = read_image(args.photo).rgb
    h, w = photo.shape[:2]
    scale = args.size / max(h, w)
    from PIL import Image

    photo = np.asarray(Image.fromarray((photo * 255).round().astype(np.uint8)).resize((round(w * scale), round(h * scale)), Image.LANCZOS))
    photo = photo.astype(np.float32) / 255
    for path in args.models:
        model = load_model(path)
        stylizer = Stylizer(model, device="cpu")
        outs = [stylizer.run(photo, style=name) for name in model.style_names]
        between = [float(np.abs(o - outs[0]).mean()) for o in outs[1:]]
        from_photo = float(np.abs(outs[0] - photo).mean())
        print(f"{path}: between styles {min(between):.4f}–{max(between):.4f} (mean {np.mean(between):.4f}), "
              f"from the photo {from_photo:.4f}")


if __name__ == "__main__":
    main()
