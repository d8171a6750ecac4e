"""How much the paintings' CoMatch targets differ (docs/training.md, session 16): for an msgnet's encoder
(untrained by default), each painting's Gram matrix and covariance matrix at 256 px, their distance
from the mean over the paintings relative to the mean's norm, and the share of the mean's largest
singular value. A target that is nearly the same for every painting gives CoMatch little to steer by.

    python scripts/experiments/msgnet-gram-spread.py [--model FOLDER] [--width 0.5]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from fauve.imageio import read_image
from fauve.models import build_model, load_model
from fauve.models.layers import gram_matrix
from fauve.pipeline import _resize, _to_tensor

DATA = Path(os.environ.get("FAUVE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
PAINTINGS = ["starry_night", "great_wave", "composition_vii", "mondrian_composition", "the_scream", "udnie",
             "monet_haystacks", "whistler_nocturne"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a trained msgnet folder (default: an untrained one, seed 0)")
    ap.add_argument("--width", type=float, default=0.5)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = load_model(args.model).float() if args.model else build_model("msgnet", width=args.width, residual_output=True)
    model.eval()
    grams, covs = [], []
    with torch.no_grad():
        for name in PAINTINGS:
            img = _to_tensor(read_image(DATA / "styles" / f"{name}.jpg").rgb)
            h, w = img.shape[-2:]
            s = 256 / max(h, w)
            f = model.encoder(_resize(img, (round(h * s) // 4 * 4, round(w * s) // 4 * 4)))
            grams.append(gram_matrix(f)[0])
            covs.append(gram_matrix(f - f.mean(dim=(2, 3), keepdim=True))[0])
    for label, mats in (("gram", torch.stack(grams)), ("covariance", torch.stack(covs))):
        mean = mats.mean(0)
        spread = [float((m - mean).norm() / mean.norm()) for m in mats]
        sv = torch.linalg.svdvals(mean)
        print(f"{label}: distance from the mean / its norm {min(spread):.3f}–{max(spread):.3f}; "
              f"largest singular value's share {float(sv[0] / sv.sum()):.3f}")


if __name__ == "__main__":
    main()
