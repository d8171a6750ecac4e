"""``fauve stylize``: files and folders in, stylized images out, through ``fauve.pipeline.Stylizer``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"}
OUTPUT_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "stylize", help="stylize images or folders with a trained style or a style image",
        description="Stylize images (files or folders, searched recursively) with a catalog style, a model folder or "
                    "Hub repo (--style), or any style image on an msgnet/adain model (--style-image). "
                    "Alpha is kept; 16-bit and float inputs give 16-bit PNGs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    p.add_argument("--style", metavar="NAME_OR_PATH",
                   help="catalog style id (`fauve styles`), model folder (folder#style) or Hub repo id; with "
                        "--style-image: the msgnet/adain model to use")
    p.add_argument("--style-image", nargs="+", metavar="IMG", help="style image(s) for an msgnet/adain model; several "
                   "are interpolated (--mix 0=0.7,1=0.3) or given regions by --mask")
    p.add_argument("--method", choices=["adain", "msgnet"], help="with --style-image and no --style: which kind of "
                   "catalog model to use (default: the first available, adain before msgnet)")
    p.add_argument("--strength", type=float, default=1.0, help="0 = the photo, 1 = full style (adain: the α trade-off)")
    p.add_argument("--preserve-color", choices=["none", "luminance", "histogram"], default="none",
                   help="keep the photo's colours: luminance transfer or histogram matching")
    p.add_argument("--style-scale", type=float, default=1.0, help="stroke size: >1 larger strokes, <1 finer")
    p.add_argument("--mix", metavar="A=W,B=W", help="mix the styles of a multi-style model, e.g. starry_night=0.5,great_wave=0.5")
    p.add_argument("--mask", metavar="IMG", help="grayscale mask the size of the input: white = stylized, black = photo")
    p.add_argument("--tile", type=int, metavar="N", help="process in N-pixel tiles (bounded memory; e.g. 512)")
    p.add_argument("--overlap", type=int, default=32, help="feathered overlap between tiles, pixels")
    p.add_argument("--exact-stats", action="store_true", help="with --tile on instance-norm models: exact full-resolution "
                   "normalisation statistics (tiled = untiled; slower) instead of statistics from the downscaled image")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"], help="autocast on GPUs (CPU: fp32)")
    p.add_argument("--backend", default="torch", choices=["torch", "onnxruntime"], help="run the network in PyTorch or onnxruntime (fp32; pip install 'fauve[onnx]')")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (one input) or folder (default: ./stylized)")
    p.add_argument("--bits", choices=["auto", "8", "16"], default="auto", help="PNG bits per channel (auto: 16 for 16-bit/float inputs)")
    p.add_argument("--json", action="store_true", help="print a JSON report (and JSON errors) on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_mix(text: str | None) -> dict[str, float] | None:
    """``a=0.5,b=0.5`` → {"a": 0.5, "b": 0.5}."""
    from fauve.errors import FauveError

    if not text:
        return None
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            mix[name.strip()] = float(value)
        except ValueError:
            raise FauveError(f"Cannot read --mix {text!r} at {part!r}.", "Write it as name=weight pairs: starry_night=0.5,great_wave=0.5.", code="bad_option") from None
    return mix


def collect_inputs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """(image file, its path relative to the output folder) for every input; folders are searched recursively."""
    from fauve.errors import InputImageError

    found: list[tuple[Path, Path]] = []
    for text in inputs:
        path = Path(text)
        if not path.exists():
            raise InputImageError(f"{path} does not exist.", "Check the path (and the current directory).")
        if path.is_dir():
            files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise InputImageError(f"The folder {path} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}).", "Pass a folder of images.")
            found += [(f, Path(path.name) / f.relative_to(path)) for f in files]
        else:
            found.append((path, Path(path.name)))
    return found


def _pick_model(args: argparse.Namespace, device: str) -> tuple[Any, str | None, str]:
    """(model, style name or None, description of where it came from)."""
    from fauve.catalog import list_styles, resolve_style
    from fauve.errors import FauveError

    if args.style:
        resolved = resolve_style(args.style, device="cpu")
        for note in resolved.notes:
            print(f"fauve stylize: note: {note}", file=sys.stderr)
        return resolved.model, resolved.style, resolved.id
    candidates = [e for e in list_styles(available_only=True) if e.accepts_style_image and e.index is None]
    if args.method:
        candidates = [e for e in candidates if e.method == args.method]
    candidates.sort(key=lambda e: ("adain", "msgnet").index(e.method) if e.method in ("adain", "msgnet") else 2)
    if not candidates:
        raise FauveError("No msgnet or adain model is available for --style-image.",
                         "Pass one with --style MODEL_FOLDER (train one with `fauve train adain`), or `fauve hub pull` one.",
                         code="no_model")
    resolved = resolve_style(candidates[0].id, device="cpu")
    return resolved.model, None, resolved.id


def _output_path(source: Path, rel: Path, out: Path | None, single: bool) -> Path:
    if single and out is not None and out.suffix.lower() in OUTPUT_EXTENSIONS:
        return out
    folder = out if out is not None else Path("stylized")
    return (folder / rel).with_suffix(".png")


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

    from fauve.errors import FauveError, InputImageError
    from fauve.imageio import read_image, write_image
    from fauve.pipeline import Stylizer

    if not args.style and not args.style_image:
        raise FauveError("Give a style: --style NAME_OR_PATH or --style-image IMG.", "`fauve styles` lists the catalog styles.", code="bad_option")
    files = collect_inputs(args.inputs)
    out = Path(args.output) if args.output else None
    single = len(files) == 1 and not Path(args.inputs[0]).is_dir()
    if not single and out is not None and out.suffix.lower() in OUTPUT_EXTENSIONS:
        raise FauveError(f"{len(files)} images cannot all be written to one file {out}.", "Pass a folder as -o.", code="bad_option")
    style_images = None
    if args.style_image:
        style_images = [read_image(p).rgb for p in args.style_image]
    mask = read_image(args.mask, min_side=1).rgb[:, :, 0] if args.mask else None
    model, style, source = _pick_model(args, args.device)
    stylizer = Stylizer(model, device=args.device, precision=args.precision, backend=args.backend,
                          exact_stats=args.exact_stats)
    mix = parse_mix(args.mix)
    report: dict[str, Any] = {"ok": True, "style": source, "method": model.method, "device": str(stylizer.device),
                              "precision": stylizer.precision, "backend": stylizer.backend, "outputs": [], "errors": []}
    bar = tqdm(total=len(files), unit="img", desc="stylize", disable=args.quiet or args.json, file=sys.stderr,
               bar_format="{l_bar}{bar}| {n:.2f}/{total_fmt} [{elapsed}<{remaining}]")
    explicit = {Path(p) for p in args.inputs if not Path(p).is_dir()}
    for path, rel in files:
        done_before = bar.n
        start = time.perf_counter()
        try:
            data = read_image(path)
        except InputImageError as err:
            if path in explicit:
                bar.close()
                raise
            report["errors"].append({"input": str(path), **err.to_dict()})
            print(f"fauve stylize: skipped {path}: {err}", file=sys.stderr)
            bar.update(1)
            continue

        def progress(fraction: float, base: float = done_before) -> None:
            bar.update(base + fraction - bar.n)

        options = dict(strength=args.strength, preserve_color=args.preserve_color, style_scale=args.style_scale,
                       tile=args.tile, overlap=args.overlap, progress=progress)
        if style_images is not None:
            options["style_image"] = style_images if len(style_images) > 1 else style_images[0]
            options["mix"] = mix
        elif mix:
            options["mix"] = mix
        else:
            options["style"] = style
        if mask is not None:
            if mask.shape != data.rgb.shape[:2]:
                raise FauveError(f"The mask {args.mask} is {mask.shape[1]}×{mask.shape[0]} but {path} is "
                                 f"{data.rgb.shape[1]}×{data.rgb.shape[0]}.", "Give a mask the size of the image.", code="bad_option")
            options["mask"] = mask
        result = stylizer.run(data.rgb, **options)
        target = _output_path(path, rel, out, single)
        bits = int(args.bits) if args.bits != "auto" else (16 if data.bits > 8 else 8)
        write_image(target, result, data.alpha, bits=bits if target.suffix.lower() == ".png" else 8, profile=data.profile)
        bar.update(done_before + 1 - bar.n)
        report["outputs"].append({"input": str(path), "output": str(target), "width": int(result.shape[1]),
                                  "height": int(result.shape[0]), "bits": bits, "alpha": data.alpha is not None,
                                  "color_profile": data.profile.name if data.profile else None,
                                  "seconds": round(time.perf_counter() - start, 3)})
    bar.close()
    if report["errors"]:
        report["ok"] = False
    if args.json:
        print(json.dumps(report, indent=2))
    elif not args.quiet:
        for item in report["outputs"]:
            print(item["output"])
    return 0 if not report["errors"] else 2
