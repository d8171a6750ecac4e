"""``fauve eval``: the quality bar. Each model's mean content and style loss (its own training
objective) at several sizes, beside Gatys optimisation of the same objective on the same pairs,
with times, a markdown table, JSON and contact sheets (``fauve.evaluate``)."""

from __future__ import annotations

import argparse
import json
import sys


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated pixel sizes like 256,512, got {text!r}") from None
    if not sizes:
        raise argparse.ArgumentTypeError("give at least one size")
    return sizes


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="quality evaluation: model losses beside Gatys optimisation, table + contact sheet",
        description="For each model (and each of its styles) and each content photo, the mean content and style loss "
                    "(the normalised losses and weights of the model's own training recipe in config.json) at each size, "
                    "beside Gatys et al.'s optimisation of the same objective (L-BFGS, as in Johnson et al.'s comparison) "
                    "on a fixed subset of the photos, and the time each took. A style ships when its content and style "
                    "losses are each within 1.5x of Gatys. Writes eval.md, eval.json and contact-<size>.png to -o DIR; "
                    "Gatys results are cached in DIR/gatys/ and reused by later runs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="model folders (config.json + model.safetensors) or Hub repo ids")
    p.add_argument("--content", nargs="+", required=True, metavar="DIR", help="content photos: folders or files (e.g. Kodak24)")
    p.add_argument("--styles", nargs="+", required=True, metavar="PATH",
                   help="style images or folders; each model's styles are matched to them by file name")
    p.add_argument("--sizes", type=_sizes, default=(256, 512), help="long sides to evaluate at, comma-separated")
    p.add_argument("--gatys-sizes", type=_sizes, help="sizes to run Gatys at; None: the --sizes (each Gatys run at 512 px takes ~4× one at 256) (default: %(default)s)")
    p.add_argument("--gatys-subset", type=int, default=4, help="number of photos (evenly spread, fixed) for Gatys; 0 skips it")
    p.add_argument("--gatys-iters", type=int, default=500, help="L-BFGS iterations (Johnson et al. compare with 500)")
    p.add_argument("--gatys-init", choices=["content", "noise"], default="content", help="Gatys start image")
    p.add_argument("--max-photos", type=int, help="evaluate the models on this many photos (evenly spread) instead of all")
    p.add_argument("--style-size", type=int, help="long side of the style images for the loss targets (default: the recipe's)")
    p.add_argument("--unseen", action="store_true", help="also evaluate msgnet/adain models on the style images they were not trained on")
    p.add_argument("--sheet-tile", type=int, default=160, help="long side of each picture in the contact sheets")
    p.add_argument("--save-outputs", action="store_true", help="write every output on the contact sheet's photos (the Gatys photos, or the first four) to DIR/outputs/")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--backend", default="torch", choices=["torch", "onnxruntime"],
                   help="run the models in PyTorch or onnxruntime (fp32; pip install 'fauve[onnx]'); Gatys always runs in PyTorch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default="eval", metavar="DIR", help="output folder")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fauve.evaluate import EvalSettings, evaluate, summary_table

    settings = EvalSettings(
        content=list(args.content), styles=list(args.styles), sizes=args.sizes, gatys_sizes=args.gatys_sizes,
        gatys_subset=args.gatys_subset, gatys_iters=args.gatys_iters, gatys_init=args.gatys_init,
        max_photos=args.max_photos, style_size=args.style_size, unseen=args.unseen, out=args.output,
        sheet_tile=args.sheet_tile, save_outputs=args.save_outputs, device=args.device, seed=args.seed, backend=args.backend,
    )
    quiet = args.quiet or args.json
    report = evaluate(args.models, settings, log=(lambda _m: None) if quiet else (lambda m: print(m, file=sys.stderr, flush=True)))
    if args.json:
        print(json.dumps({"ok": True, "output": args.output, "summary": report["summary"]}, indent=2))
    else:
        print(summary_table(report))
        print(f"\nwrote {args.output}/eval.md, eval.json, " + ", ".join(f"contact-{s}.png" for s in settings.sizes))
    return 0
