#!/usr/bin/env python
"""Figures and numbers for docs/experiments.md, from the runs of scripts/experiments/train-small
and scripts/experiments/reconstruct (runs/exp/, git-ignored). Writes PNGs to docs/img/ and the
numbers as JSON to docs/img/experiments.json (merged per experiment).

    scripts/experiments/figures.py norm          # claim 1: BatchNorm vs InstanceNorm
    scripts/experiments/figures.py checkerboard  # claim 2: upsampling artefacts
    scripts/experiments/figures.py recon         # claim 3: feature/style reconstructions
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "runs" / "exp"
IMG = ROOT / "docs" / "img"
DATA = Path(os.environ.get("FAUVE_DATA", ROOT.parent / "shared" / "data"))
EVAL_PHOTOS = ["kodim23.png", "kodim05.png", "kodim15.png", "kodim03.png", "kodim07.png", "kodim19.png", "kodim21.png", "kodim24.png"]


def _save_numbers(key: str, numbers: dict) -> None:
    path = IMG / "experiments.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = numbers
    path.write_text(json.dumps(data, indent=1))


def _read_losses(run: str) -> dict[str, np.ndarray]:
    rows = list(csv.DictReader((RUNS / run / "losses.csv").open()))
    return {k: np.array([float(r[k]) for r in rows]) for k in ("step", "loss", "content", "style", "seconds")}


def _ema(x: np.ndarray, window: int = 25) -> np.ndarray:
    """Trailing median over ``window`` steps: robust to the single-batch spikes of the style loss and,
    unlike an EMA started at the first value, not dragged by the first steps' huge losses."""
    return np.array([np.median(x[max(0, i - window + 1): i + 1]) for i in range(len(x))])


def _stylize(run: str, photos: list[Path], size: int) -> list[np.ndarray]:
    from fauve.evaluate import load_tensor, to_numpy
    from fauve.pipeline import Stylizer

    stylizer = Stylizer(str(RUNS / run), device="cpu", precision="fp32")
    return [stylizer.run(to_numpy(load_tensor(p, size))) for p in photos]


def _photos(n: int) -> list[Path]:
    return [DATA / "content-eval" / name for name in EVAL_PHOTOS[:n]]


# -- claim 1 ------------------------------------------------------------------------------------
def norm() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from fauve.evaluate import Scorer, load_tensor, loss_spec
    from fauve.models import load_model

    runs = {"BatchNorm (Johnson)": "bn", "InstanceNorm (Ulyanov)": "in"}
    curves = {label: _read_losses(run) for label, run in runs.items()}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, title in zip(axes, ("loss", "style", "content"), ("total loss", "style loss", "content loss")):
        for (label, c), colour in zip(curves.items(), ("tab:red", "tab:blue")):
            ax.plot(c["step"], c[key], color=colour, alpha=0.2, lw=0.8)
            ax.plot(c["step"], _ema(c[key]), color=colour, lw=1.8, label=label)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend()
    fig.suptitle("Same generator, style, seed and data; only the normalisation differs (training loss, trailing median of 25 steps)")
    fig.tight_layout()
    fig.savefig(IMG / "norm-curves.png", dpi=90)
    plt.close(fig)

    numbers: dict = {}
    for label, c in curves.items():
        smooth = {k: _ema(c[k]) for k in ("loss", "style", "content")}
        at = {int(s): {k: round(float(smooth[k][int(s) - 1]), 4) for k in smooth} for s in (50, 100, 200, 300, 400) if s <= len(c["step"])}
        numbers[label] = {"smoothed_at_step": at, "seconds_per_step": round(float(c["seconds"][-1] / len(c["step"])), 2)}
    # steps each run needs to reach the BN run's final smoothed total loss
    bn_final = _ema(curves["BatchNorm (Johnson)"]["loss"])[-1]
    for label, c in curves.items():
        reach = np.nonzero(_ema(c["loss"]) <= bn_final)[0]
        numbers[label]["steps_to_bn_final_loss"] = int(c["step"][reach[0]]) if len(reach) else None

    # held-out photos at 256 px, inference mode (BN with its running statistics), the training objective
    photos = _photos(8)
    rows = {}
    for label, run in runs.items():
        model = load_model(RUNS / run)
        scorer = Scorer(loss_spec(model))
        style = scorer.style_target(load_tensor(DATA / "styles" / "starry_night.jpg", scorer.spec.style_size))
        outs = _stylize(run, photos, 256)
        terms = []
        for p, y in zip(photos, outs):
            x = load_tensor(p, 256)
            with torch.no_grad():
                t = scorer.terms(torch.from_numpy(y.transpose(2, 0, 1).copy())[None], scorer.content_features(x), style)
            terms.append({k: float(v) for k, v in t.items()})
        numbers[label]["eval_256"] = {k: round(float(np.mean([t[k] for t in terms])), 4) for k in ("content", "style", "total")}
        rows[label] = outs
    fig, axes = plt.subplots(3, 4, figsize=(12, 6.4))
    for j, p in enumerate(photos[:4]):
        axes[0, j].imshow(load_tensor(p, 256)[0].permute(1, 2, 0).numpy())
        for i, (label, outs) in enumerate(rows.items(), start=1):
            axes[i, j].imshow(outs[j])
            if j == 0:
                axes[i, j].set_ylabel(label, fontsize=9)
    axes[0, 0].set_ylabel("photo", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Held-out Kodak photos at 256 px after the same training (inference mode)")
    fig.tight_layout()
    fig.savefig(IMG / "norm-samples.png", dpi=90)
    plt.close(fig)
    _save_numbers("norm", numbers)
    print(json.dumps(numbers, indent=1))


# -- claim 2 ------------------------------------------------------------------------------------
def checkerboard() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fauve.artifacts import lattice_power, luma
    from fauve.evaluate import load_tensor, to_numpy

    runs = {"nearest + conv": "in-200", "transposed conv": "transposed", "MSG-Net upsampled residual": "msgnet"}
    photos = _photos(8)
    inputs = [to_numpy(load_tensor(p, 256)) for p in photos]
    inputs = [x[: x.shape[0] // 4 * 4, : x.shape[1] // 4 * 4] for x in inputs]
    outputs = {label: _stylize(run, photos, 256) for label, run in runs.items()}
    numbers: dict = {}
    for label, outs in [("input photo", inputs)] + list(outputs.items()):
        outs = [o[: o.shape[0] // 4 * 4, : o.shape[1] // 4 * 4] for o in outs]
        p2 = [lattice_power(luma(o), 2) for o in outs]
        p4 = [lattice_power(luma(o), 4) for o in outs]
        numbers[label] = {"period2_fraction": float(np.mean([a for a, _ in p2])), "period2_peak": float(np.mean([b for _, b in p2])),
                          "period4_fraction": float(np.mean([a for a, _ in p4])), "period4_peak": float(np.mean([b for _, b in p4]))}
    base = numbers["input photo"]
    for label in runs:
        n = numbers[label]
        n["period2_vs_input"] = n["period2_fraction"] / base["period2_fraction"]
        n["period4_vs_input"] = n["period4_fraction"] / base["period4_fraction"]
    # zoomed crops: a flat region of the first photo (kodim23's background), 48×48 px ×5 nearest
    y0, x0, c = 20, 8, 48
    cols = [("input", inputs[0])] + [(label, outputs[label][0]) for label in runs]
    fig, axes = plt.subplots(2, 4, figsize=(12, 6.2))
    for j, (label, img) in enumerate(cols):
        axes[0, j].imshow(img)
        axes[0, j].add_patch(plt.Rectangle((x0, y0), c, c, fill=False, color="yellow", lw=1.5))
        axes[0, j].set_title(label, fontsize=10)
        crop = img[y0:y0 + c, x0:x0 + c]
        axes[1, j].imshow(np.kron(crop, np.ones((5, 5, 1))), interpolation="nearest")
        if label in numbers:
            n = numbers[label]
            axes[1, j].set_xlabel(f"period-2 power ×{n['period2_vs_input']:.1f} input's, peak {n['period2_peak']:.0f}", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Upsampling and checkerboard artefacts (256 px, crops ×5, nearest-neighbour zoom)")
    fig.tight_layout()
    fig.savefig(IMG / "checkerboard.png", dpi=90)
    plt.close(fig)
    _save_numbers("checkerboard", numbers)
    print(json.dumps(numbers, indent=1))


# -- claim 3 ------------------------------------------------------------------------------------
def recon() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fauve.evaluate import load_tensor, to_numpy

    layers = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    targets = {"feature": DATA / "content-eval" / "kodim23.png", "style": DATA / "styles" / "starry_night.jpg"}
    fig, axes = plt.subplots(2, 5, figsize=(14, 5.4))
    numbers: dict = {}
    for i, (kind, target) in enumerate(targets.items()):
        axes[i, 0].imshow(to_numpy(load_tensor(target, 128)))
        axes[i, 0].set_title("target" if i == 0 else "style target", fontsize=10)
        axes[i, 0].set_ylabel(f"{kind} reconstruction", fontsize=10)
        for j, layer in enumerate(layers, start=1):
            from fauve.imageio import read_image

            axes[i, j].imshow(read_image(RUNS / "recon" / f"{kind}_{layer}.png").rgb)
            info = json.loads((RUNS / "recon" / f"{kind}_{layer}.json").read_text())
            numbers[f"{kind}_{layer}"] = {"loss_start": info["loss_start"], "loss_end": info["loss_end"], "seconds": info["seconds"],
                                          "iterations": info["iterations"]}
            axes[i, j].set_title(f"{layer}  (loss {info['loss_end']:.3f})", fontsize=10)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("From noise, matching only one VGG16 layer's features (top) or Gram matrix (bottom); 128 px, L-BFGS")
    fig.tight_layout()
    fig.savefig(IMG / "reconstruction.png", dpi=90)
    plt.close(fig)
    _save_numbers("reconstruction", numbers)
    print(json.dumps(numbers, indent=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figure", choices=["norm", "checkerboard", "recon"])
    args = parser.parse_args()
    IMG.mkdir(parents=True, exist_ok=True)
    {"norm": norm, "checkerboard": checkerboard, "recon": recon}[args.figure]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
