#!/usr/bin/env python
"""Average the weights of several snapshots of one run (uniform weight averaging, as in SWA: Izmailov et al. 2018)
and write the result as a model folder. Buffers computed from the paintings (msgnet's Gram matrices, adain's
statistics) are recomputed with the averaged weights from the paintings named in the run's config.

    python scripts/experiments/average-snapshots.py runs/m16-covkd/snapshots/step00{5000,5500,6000} -o runs/m16-avg \
        --styles-dir runs/m16-styles
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from fauve.models import load_model
from fauve.train.data import load_style


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("snapshots", nargs="+")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--styles-dir", required=True, help="folder holding the run's paintings (config.json style_sources)")
    args = ap.parse_args()
    models = [load_model(p).float() for p in args.snapshots]
    avg = models[0]
    states = [m.state_dict() for m in models]
    merged = {k: sum(s[k] for s in states) / len(states) if states[0][k].is_floating_point() else states[0][k] for k in states[0]}
    avg.load_state_dict(merged)
    avg.eval()
    size = int((avg.training_recipe or {}).get("style_size") or 256)
    images = [load_style(Path(args.styles_dir) / name, size) for name in avg.style_sources]
    if avg.method == "msgnet":
        avg.set_style_grams(images)
    elif avg.method == "adain":
        avg.set_named_styles(images)
    avg.training_recipe = {**(avg.training_recipe or {}), "averaged_snapshots": [Path(p).name for p in args.snapshots]}
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    avg.save_pretrained(out)
    thumbs = Path(args.snapshots[-1]) / "thumbnails"
    if thumbs.is_dir():
        shutil.copytree(thumbs, out / "thumbnails")
    print(out)


if __name__ == "__main__":
    main()
