"""``fauve optimize``: Gatys et al. style transfer by optimisation, and Johnson et al.'s
feature/style reconstructions. Needs no trained model: with no --content/--style it uses the
sample photo and painting bundled in fauve/samples."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "samples"
DEFAULT_CONTENT = SAMPLES / "parrots.jpg"
DEFAULT_STYLE = SAMPLES / "starry_night.jpg"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "optimize", help="style transfer by optimisation (Gatys et al.); no trained model needed",
        description="Optimise an image so its VGG16 features match the content image and its Gram matrices match the "
                    "style image (Gatys et al. 2016), or reconstruct an image from one layer's features or Grams "
                    "(--reconstruct, Johnson et al. 2016). Without --content/--style the bundled samples "
                    f"({DEFAULT_CONTENT.name}, {DEFAULT_STYLE.name}) are used.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--content", metavar="IMG", help=f"content photo (default: bundled {DEFAULT_CONTENT.name})")
    p.add_argument("--style", metavar="IMG", help=f"style image (default: bundled {DEFAULT_STYLE.name})")
    p.add_argument("--size", type=int, default=256, help="long side of the result, pixels")
    p.add_argument("--style-size", type=int, help="long side of the style image (default: --size)")
    p.add_argument("--iters", type=int, default=150, help="iterations")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    p.add_argument("--lr", type=float, help="learning rate (default: 1 for L-BFGS, 0.02 for Adam)")
    p.add_argument("--content-weight", type=float, default=1.0)
    p.add_argument("--style-weight", type=float, default=10.0, help="weight of the (per-layer normalised) style loss")
    p.add_argument("--tv-weight", type=float, default=0.0, help="total-variation smoothing")
    p.add_argument("--content-layers", default="relu3_3", help="comma-separated VGG16 relu layers")
    p.add_argument("--style-layers", default="relu1_2,relu2_2,relu3_3,relu4_3", help="comma-separated VGG16 relu layers")
    p.add_argument("--init", choices=["content", "noise"], default="content", help="start image")
    p.add_argument("--reconstruct", choices=["feature", "style"],
                   help="instead of style transfer: start from noise and match only the features (feature) or only "
                        "the Gram matrices (style) of --layer of the --content image")
    p.add_argument("--layer", default="relu3_3", help="layer(s) for --reconstruct, comma-separated")
    p.add_argument("--vgg", choices=["auto", "torchvision", "hed"], default="auto", help="VGG16 weight source")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default="optimized.png", metavar="OUT", help="output image (.png, .jpg, …)")
    p.add_argument("--json", action="store_true", help="print a JSON report (and JSON errors) on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _layers(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def run(args: argparse.Namespace) -> int:
    from fauve.errors import FauveError

    try:
        return _run(args)
    except FauveError as err:
        if args.json:
            print(json.dumps({"ok": False, "error": err.to_dict()}))
        raise


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fauve import optimize
    from fauve.errors import FauveError
    from fauve.imageio import read_image, write_image

    if args.iters < 1 or args.size < 16:
        raise FauveError("--iters must be ≥ 1 and --size ≥ 16.", "E.g. --size 256 --iters 150.", code="bad_option")
    content_path = Path(args.content) if args.content else DEFAULT_CONTENT
    content = read_image(content_path).rgb
    bar = tqdm(total=args.iters, unit="it", desc="optimize", disable=args.quiet or args.json, file=sys.stderr)

    def progress(fraction: float) -> None:
        bar.update(round(fraction * args.iters) - bar.n)

    start = time.perf_counter()
    common = dict(size=args.size, iters=args.iters, optimizer=args.optimizer, lr=args.lr, vgg_source=args.vgg,
                  device=args.device, seed=args.seed, progress=progress)
    if args.reconstruct:
        result = optimize.reconstruct(content, kind=args.reconstruct, layers=_layers(args.layer), **common)
        style_path = None
    else:
        style_path = Path(args.style) if args.style else DEFAULT_STYLE
        style = read_image(style_path).rgb
        result = optimize.stylize(content, style, style_size=args.style_size, content_weight=args.content_weight,
                                  style_weight=args.style_weight, tv_weight=args.tv_weight,
                                  content_layers=_layers(args.content_layers), style_layers=_layers(args.style_layers),
                                  init=args.init, **common)
    bar.close()
    out = write_image(args.output, result.image)
    report = {"ok": True, "output": str(out), "content": str(content_path), "style": str(style_path) if style_path else None,
              "reconstruct": args.reconstruct, "layers": list(_layers(args.layer)) if args.reconstruct else None,
              "width": int(result.image.shape[1]), "height": int(result.image.shape[0]), "iterations": result.iterations,
              "loss_start": result.losses[0] if result.losses else None, "loss_end": result.losses[-1] if result.losses else None,
              "layer_losses": result.layer_losses, "vgg": result.vgg, "seconds": round(time.perf_counter() - start, 2)}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{out}  ({report['width']}×{report['height']}, {result.iterations} iterations, "
              f"loss {report['loss_start']:.3g} → {report['loss_end']:.3g}, {report['seconds']} s)")
    return 0
