"""Quality evaluation: feed-forward models against Gatys optimisation, on the loss both minimise.

Johnson, Alahi & Fei-Fei 2016 ("Perceptual Losses for Real-Time Style Transfer and
Super-Resolution", §4.1, Fig. 5 and Table 1) judge their networks by the value of the very
objective they were trained on, next to Gatys et al.'s optimisation of that objective for each
image (500 L-BFGS iterations), at 256, 512 and 1024 px. This module does the same for every fauve
model:

1. The loss comes from the model's own ``config.json`` training recipe (layers, weights, style
   size, loss network): for johnson/ulyanov/dumoulin/msgnet the normalised content and Gram losses
   of ``fauve.losses`` on VGG16 (``Method.perceptual`` in the trainer); for adain the content loss
   to the AdaIN target at the model's AdaIN layer (relu4_1, or relu3_1) and the mean/std style loss, on the model's own encoder
   (``AdaINMethod.loss``). The style target is the style image at the recipe's style size, as in
   training, whatever the size of the photo.
2. Each model runs (``fauve.pipeline.Stylizer``, untiled, fp32, in PyTorch or onnxruntime: the
   ``backend`` setting, so the path a user runs is the one judged) on every content photo resized to
   each evaluation size (long side), once per style; content, style and total losses are averaged.
3. Gatys optimisation (``fauve.optimize``'s L-BFGS engine, started from the photo as
   ``fauve optimize`` does) minimises the *same* weighted objective on a fixed subset of the
   photos × the same styles, at each size. Results are cached on disk by (photo, style, loss,
   size, iterations), so models that share a style and a recipe share the optimisation.
4. Every output is also scored for a checkerboard (``fauve.artifacts``): how much more strongly it
   repeats on the 2, 4 and 8 px upsampling lattices than its photo ("grid ×photo", worst period),
   and for fine parallel lines off the lattice: how far its spectrum stands out along a frequency
   axis, over the photo's ("stripes ×photo", worst axis).
5. A style of a model "ships" when, on the Gatys pairs, its mean style loss and mean content loss
   are each within ``SHIP_RATIO`` (1.5×) of Gatys's at every size Gatys ran at, and its grid and
   stripe scores are at most ``GRID_LIMIT`` and ``STRIPE_LIMIT`` at every size.

Times: the model's seconds per image (inference only) and Gatys's seconds per pair, on the device
used. The report is ``eval.json`` + ``eval.md`` and one contact sheet per size (photos ×
(model, style) rows, with Gatys's result under each style's models).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fauve.artifacts import GRID_LIMIT, STRIPE_LIMIT, GridMeter, StripeMeter
from fauve.errors import FauveError, InputImageError

SHIP_RATIO = 1.5
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
GATYS_CACHE_VERSION = 1


# -- the loss -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LossSpec:
    """The objective a model was trained on (from its config.json's ``training`` recipe).

    ``kind``: ``gram`` (Gram-matrix style loss on VGG16) or ``adain`` (mean/std style loss and the
    AdaIN content target, on the model's encoder)."""

    kind: str
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    content_weight: float
    style_weight: float
    tv_weight: float
    style_size: int
    vgg_source: str

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        return (f"{self.kind}: content {'+'.join(self.content_layers)} ×{self.content_weight:g}, style "
                f"{'+'.join(self.style_layers)} ×{self.style_weight:g}"
                + (f", TV ×{self.tv_weight:g}" if self.tv_weight else "")
                + f", style image {self.style_size} px, VGG16 {self.vgg_source}")


def loss_spec(model: Any, style_size: int | None = None) -> LossSpec:
    """The training objective of ``model``: its recipe's layers and weights, or the method's
    defaults (``fauve.train.defaults``) for a recipe that lacks them."""
    from fauve.train.defaults import DEFAULTS

    method = model.method
    recipe = model.training_recipe or {}
    d = DEFAULTS[method]
    if method == "adain":
        kind, source = "adain", getattr(model, "vgg_source", "hed")
        # The adain trainer loads its style images at the larger of the crop size and the style size (loop.train).
        size = style_size or max(int(recipe.get("size") or 256), int(recipe.get("style_size") or 0))
    else:
        kind, source = "gram", (model.loss_net or {}).get("source") or "auto"
        size = style_size or int(recipe.get("style_size") or 256)
    return LossSpec(
        kind=kind,
        content_layers=tuple(recipe.get("content_layers") or d.content_layers),
        style_layers=tuple(recipe.get("style_layers") or d.style_layers),
        content_weight=float(recipe["content_weight"] if recipe.get("content_weight") is not None else d.content_weight),
        style_weight=float(recipe["style_weight"] if recipe.get("style_weight") is not None else d.style_weight),
        tv_weight=float(recipe["tv_weight"] if recipe.get("tv_weight") is not None else d.tv_weight),
        style_size=int(size),
        vgg_source=str(source),
    )


class Scorer:
    """Computes a :class:`LossSpec`'s terms for images (1, 3, H, W) in [0, 1].

    Usage: ``st = scorer.style_target(style)``, ``cf = scorer.content_features(photo)``,
    ``ct = scorer.content_target(cf, st)``, ``scorer.terms(image, ct, st)``."""

    def __init__(self, spec: LossSpec, model: Any = None, device: torch.device | str = "cpu", vgg: Any = None) -> None:
        self.spec = spec
        self.device = torch.device(device)
        if spec.kind == "adain":
            if model is None or not hasattr(model, "encode"):
                raise ValueError("an adain loss needs the adain model (its encoder is the loss network)")
            self.model = model.to(self.device)
            self.content_taps = (model.layer,)
        else:
            from fauve.vgg import VGG16Features

            taps = tuple(dict.fromkeys(spec.content_layers + spec.style_layers))
            self.vgg = (vgg or VGG16Features(taps=taps, source=spec.vgg_source)).to(self.device)
            self.content_taps = spec.content_layers

    def features(self, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        layers = tuple(dict.fromkeys(layers))
        if self.spec.kind == "adain":
            return self.model.encode(image.to(self.device), layers)
        return self.vgg(image.to(self.device), layers)

    @torch.no_grad()
    def style_target(self, style: torch.Tensor) -> dict[str, torch.Tensor]:
        from fauve.losses import style_grams

        spec = self.spec
        if spec.kind == "adain":
            return self.features(style, spec.style_layers + self.content_taps)
        return style_grams(self.features(style, spec.style_layers), spec.style_layers)

    @torch.no_grad()
    def content_features(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.features(content, self.content_taps)

    @torch.no_grad()
    def content_target(self, content_feats: dict[str, torch.Tensor], style_target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The photo's features (gram), or AdaIN(f_c, μ_s, σ_s) at the AdaIN layer (adain)."""
        if self.spec.kind != "adain":
            return content_feats
        from fauve.models.layers import adain, mean_std

        (layer,) = self.content_taps
        s_mean, s_std = mean_std(style_target[layer])
        return {layer: adain(content_feats[layer], s_mean, s_std)}

    def terms(self, image: torch.Tensor, content_target: dict[str, torch.Tensor], style_target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``content``, ``style``, ``tv`` and the weighted ``total`` (tensors; differentiable)."""
        from fauve import losses

        spec = self.spec
        image = image.to(self.device)
        if spec.kind == "adain":
            (layer,) = self.content_taps
            feats = self.features(image, spec.style_layers + (layer,))
            content = losses.relative_mse(feats[layer], content_target[layer])
            style = losses.mean_std_style_loss(feats, style_target, spec.style_layers)
        else:
            feats = self.features(image, spec.content_layers + spec.style_layers)
            content = losses.content_loss(feats, content_target, spec.content_layers)
            style = losses.gram_style_loss(feats, style_target, spec.style_layers)
        tv = losses.total_variation(image)
        total = spec.content_weight * content + spec.style_weight * style + spec.tv_weight * tv
        return {"content": content, "style": style, "tv": tv, "total": total}


# -- images -------------------------------------------------------------------------------------
def load_tensor(path: str | Path, long_side: int | None) -> torch.Tensor:
    """An image file as (1, 3, H, W) float in [0, 1], its long side resized to ``long_side``."""
    from fauve.imageio import read_image

    rgb = read_image(path).rgb
    return resize_long_side(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float(), long_side)


def resize_long_side(x: torch.Tensor, long_side: int | None) -> torch.Tensor:
    if not long_side:
        return x
    h, w = x.shape[-2:]
    scale = long_side / max(h, w)
    size = (max(16, round(h * scale)), max(16, round(w * scale)))
    if size == (h, w):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)


def find_images(paths: Sequence[str | Path], what: str) -> list[Path]:
    """Image files given directly or inside the given folders (not recursive), sorted by name."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        elif p.is_file():
            found.append(p)
        else:
            raise InputImageError(f"{what} {p} does not exist.", f"Pass image files or folders of images to --{what.split()[0]}.")
    if not found:
        raise InputImageError(f"No {what} images in {', '.join(map(str, paths))}.", f"Give a folder with .jpg/.png {what} images.")
    return list(dict.fromkeys(found))


def fixed_subset(photos: Sequence[Path], n: int) -> list[Path]:
    """``n`` photos evenly spread over the sorted list (index i·len/n): fixed, documented, not random."""
    if n <= 0:
        return []
    if n >= len(photos):
        return list(photos)
    return [photos[i * len(photos) // n] for i in range(n)]


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


# -- Gatys optimisation --------------------------------------------------------------------------
@dataclass
class GatysRun:
    content: float
    style: float
    tv: float
    total: float
    seconds: float
    iterations: int
    history: list[float]  # total loss at the start and after every 10 iterations
    image: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("image")
        return d


def gatys(scorer: Scorer, content: torch.Tensor, style_target: dict[str, torch.Tensor], *, iters: int = 500,
          init: str = "content", seed: int = 0) -> GatysRun:
    """Gatys et al. 2016: minimise the scorer's weighted loss over the pixels by L-BFGS (the engine
    of ``fauve.optimize``; pixels kept in [0, 1]), starting from the photo (``init="content"``) or
    from noise. Returns the final terms, the loss history and the image."""
    from fauve.optimize import _initial, _run

    torch.manual_seed(seed)
    content = content.to(scorer.device)
    target = scorer.content_target(scorer.content_features(content), style_target)

    def objective(img: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        t = scorer.terms(img, target, style_target)
        return t["total"], {k: float(v.detach()) for k, v in t.items()}

    x = _initial(content, init)
    start = time.perf_counter()
    history, _, done = _run(objective, x, iters=iters, optimizer="lbfgs", lr=None, progress=None, cancel=None)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        final = {k: float(v) for k, v in scorer.terms(x, target, style_target).items()}
    return GatysRun(final["content"], final["style"], final["tv"], final["total"], seconds, done, history, to_numpy(x))


def gatys_cached(cache: Path | None, scorer: Scorer, photo: Path, style: Path, size: int, *, iters: int,
                 init: str = "content", seed: int = 0, style_target: dict[str, torch.Tensor] | None = None) -> GatysRun:
    """:func:`gatys` on (photo at long side ``size``, style image at the spec's style size), read
    from / written to ``cache`` (a folder of JSON + PNG named by a hash of everything that
    determines the result)."""
    from fauve.imageio import read_image, write_image

    key_src = json.dumps({"v": GATYS_CACHE_VERSION, "photo": _sha1(photo), "style": _sha1(style), "spec": scorer.spec.key(),
                          "size": size, "iters": iters, "init": init, "seed": seed}, sort_keys=True)
    key = hashlib.sha1(key_src.encode()).hexdigest()[:20]
    if cache is not None:
        meta, png = cache / f"{key}.json", cache / f"{key}.png"
        if meta.is_file() and png.is_file():
            data = json.loads(meta.read_text())
            return GatysRun(**{k: data[k] for k in ("content", "style", "tv", "total", "seconds", "iterations", "history")},
                            image=read_image(png).rgb)
    if style_target is None:
        style_target = scorer.style_target(load_tensor(style, scorer.spec.style_size))
    run = gatys(scorer, load_tensor(photo, size), style_target, iters=iters, init=init, seed=seed)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        write_image(cache / f"{key}.png", run.image)
        meta.write_text(json.dumps({**run.to_json(), "photo": photo.name, "style_image": style.name, "size": size,
                                    "spec": asdict(scorer.spec), "init": init, "seed": seed}, indent=1))
    return run


def iterations_to_reach(history: Sequence[float], value: float, chunk: int = 10) -> int | None:
    """The first iteration count at which Gatys's loss history is ≤ ``value`` (None: never)."""
    for i, v in enumerate(history):
        if v <= value:
            return i * chunk
    return None


# -- the evaluation -----------------------------------------------------------------------------
@dataclass
class EvalSettings:
    content: list[str]
    styles: list[str]
    sizes: tuple[int, ...] = (256, 512)
    gatys_sizes: tuple[int, ...] | None = None  # default: sizes
    gatys_subset: int = 4
    gatys_iters: int = 500
    gatys_init: str = "content"
    max_photos: int | None = None
    style_size: int | None = None
    unseen: bool = False
    out: str = "eval"
    sheet_tile: int = 160
    save_outputs: bool = False
    device: str = "cpu"
    seed: int = 0
    backend: str = "torch"


@dataclass
class StyleCase:
    name: str
    image: Path
    trained: bool  # a named style of the model (False: an unseen style image, msgnet/adain)


@dataclass
class _Acc:
    n: int = 0
    content: float = 0.0
    style: float = 0.0
    total: float = 0.0
    seconds: float = 0.0

    def add(self, terms: dict[str, float], seconds: float = 0.0) -> None:
        self.n += 1
        self.content += terms["content"]
        self.style += terms["style"]
        self.total += terms["total"]
        self.seconds += seconds

    def mean(self) -> dict[str, float] | None:
        if not self.n:
            return None
        return {"n": self.n, "content": self.content / self.n, "style": self.style / self.n,
                "total": self.total / self.n, "seconds": self.seconds / self.n}


def style_cases(model: Any, style_images: Sequence[Path], unseen: bool) -> tuple[list[StyleCase], list[str]]:
    """The model's named styles that have an image among ``style_images`` (matched by the file
    name recorded in config.json's ``style_sources``, else by the style's name), plus, with
    ``unseen``, the other images for models that take style images. Returns (cases, names of
    trained styles without an image)."""
    by_name = {p.name.lower(): p for p in style_images}
    by_stem = {p.stem.lower().replace("-", "_"): p for p in style_images}
    sources = list(model.style_sources or [])
    cases, missing, used = [], [], set()
    for i, name in enumerate(model.style_names):
        src = sources[i] if i < len(sources) else None
        path = by_name.get(src.lower()) if src else None
        path = path or by_stem.get(name.lower().replace("-", "_").replace(" ", "_"))
        if path is None:
            missing.append(name)
            continue
        cases.append(StyleCase(name, path, True))
        used.add(path)
    if unseen and model.accepts_style_image:
        cases += [StyleCase(p.stem, p, False) for p in style_images if p not in used]
    return cases, missing


def _stylize(stylizer: Any, rgb: np.ndarray, case: StyleCase) -> np.ndarray:
    if case.trained:
        return stylizer.run(rgb, style=case.name)
    return stylizer.run(rgb, style_image=str(case.image))


def evaluate(models: Sequence[str | Path], settings: EvalSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate every model (see the module docstring); writes ``eval.json``, ``eval.md``,
    ``contact-<size>.png`` (and ``outputs/`` with ``save_outputs``) to ``settings.out`` and
    returns the report."""
    from fauve.imageio import write_image
    from fauve.models import load_model
    from fauve.pipeline import Stylizer, resolve_device

    if not models:
        raise FauveError("No models to evaluate.", "Pass one or more model folders (or Hub repo ids).", code="bad_option")
    sizes = tuple(settings.sizes)
    gatys_sizes = tuple(sizes if settings.gatys_sizes is None else settings.gatys_sizes)
    if not sizes or min(sizes) < 32 or (gatys_sizes and min(gatys_sizes) < 32):
        raise FauveError(f"Sizes must be at least 32 px (got {sizes}).", "E.g. --sizes 256,512.", code="bad_option")
    if settings.gatys_iters < 0 or settings.gatys_subset < 0:
        raise FauveError("--gatys-iters and --gatys-subset must be ≥ 0.", "Use --gatys-subset 0 to skip Gatys.", code="bad_option")
    device = resolve_device(settings.device)
    torch.manual_seed(settings.seed)
    photos = find_images(settings.content, "content")
    if settings.max_photos:
        photos = fixed_subset(photos, settings.max_photos)
    subset = fixed_subset(photos, settings.gatys_subset)
    sheet_photos = subset or photos[:4]  # the contact sheet's columns: the Gatys photos, or the first four
    style_images = find_images(settings.styles, "style")
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "gatys"

    rows: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    sheet: dict[int, dict[tuple[str, str], dict[str, np.ndarray]]] = {s: {} for s in sizes}  # size → (row label) → photo → image
    gatys_images: dict[int, dict[str, dict[str, np.ndarray]]] = {s: {} for s in sizes}
    style_paths: dict[str, Path] = {}
    model_specs: dict[str, str] = {}
    skipped: dict[str, list[str]] = {}
    scorers: dict[str, Scorer] = {}  # VGG16 scorers shared across models with the same loss network
    gatys_done: dict[tuple[str, str, str, int], GatysRun] = {}

    for model_ref in models:
        model = load_model(model_ref, device="cpu")
        model_name = Path(str(model_ref)).name if Path(str(model_ref)).is_dir() else str(model_ref)
        spec = loss_spec(model, settings.style_size)
        model_specs[model_name] = spec.key()
        if spec.kind == "adain":
            scorer = Scorer(spec, model, device)
        else:
            shared = next((s for s in scorers.values() if s.spec.vgg_source == spec.vgg_source and s.spec.kind == "gram"), None)
            scorer = Scorer(spec, device=device, vgg=_vgg_for(shared, spec) if shared else None)
            scorers[spec.key()] = scorer
        cases, missing = style_cases(model, style_images, settings.unseen)
        if missing:
            skipped[model_name] = missing
        if not cases:
            raise InputImageError(f"None of {model_name}'s styles ({', '.join(model.style_names[:8])}…) has an image among the --styles given.",
                                  "Pass the folder of the paintings the model was trained on (e.g. --styles ../shared/data/styles).")
        log(f"{model_name}: {model.method}, {len(cases)} style(s) × {len(photos)} photo(s) × sizes {', '.join(map(str, sizes))}; loss {spec.describe()}")
        stylizer = Stylizer(model, device=device, precision="fp32", seed=settings.seed, backend=settings.backend)
        targets = {c.name: scorer.style_target(load_tensor(c.image, spec.style_size)) for c in cases}
        for c in cases:
            style_paths[c.name] = c.image
        model_rows = []
        for size in sizes:
            acc = {c.name: _Acc() for c in cases}
            acc_subset = {c.name: _Acc() for c in cases}
            grids = {c.name: GridMeter() for c in cases}
            stripes = {c.name: StripeMeter() for c in cases}
            pair_totals: dict[tuple[str, str], float] = {}
            for photo in photos:
                x = load_tensor(photo, size)
                rgb = to_numpy(x)
                cf = scorer.content_features(x)
                for c in cases:
                    t0 = time.perf_counter()
                    y = _stylize(stylizer, rgb, c)
                    seconds = time.perf_counter() - t0
                    yt = torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1)))[None].float()
                    with torch.no_grad():
                        terms = {k: float(v) for k, v in scorer.terms(yt, scorer.content_target(cf, targets[c.name]), targets[c.name]).items()}
                    acc[c.name].add(terms, seconds)
                    grids[c.name].add(y, rgb)
                    stripes[c.name].add(y, rgb)
                    if photo in subset:
                        acc_subset[c.name].add(terms, seconds)
                        pair_totals[c.name, photo.name] = terms["total"]
                    if photo in sheet_photos:
                        sheet[size].setdefault((model_name, c.name), {})[photo.name] = _thumb(y, settings.sheet_tile)
                        if settings.save_outputs:
                            write_image(out / "outputs" / model_name / f"{c.name}_{photo.stem}_{size}.png", y)
            for c in cases:
                row: dict[str, Any] = {"model": model_name, "method": model.method, "style": c.name, "style_image": c.image.name,
                                       "unseen": not c.trained, "size": size, "all": acc[c.name].mean(), "pairs": acc_subset[c.name].mean(),
                                       "grid": grids[c.name].score(), "stripes": stripes[c.name].score(), "gatys": None}
                if size in gatys_sizes and subset and settings.gatys_iters > 0:
                    g = _Acc()
                    reach = []
                    for photo in subset:
                        key = (spec.key(), str(c.image), photo.name, size)
                        if key not in gatys_done:
                            log(f"  Gatys {photo.name} × {c.image.name} at {size} px, {settings.gatys_iters} L-BFGS iterations")
                            gatys_done[key] = gatys_cached(cache, scorer, photo, c.image, size, iters=settings.gatys_iters,
                                                           init=settings.gatys_init, seed=settings.seed, style_target=targets[c.name])
                        run = gatys_done[key]
                        g.add({"content": run.content, "style": run.style, "total": run.total}, run.seconds)
                        gatys_images[size].setdefault((c.image.name, spec.key()), {})[photo.name] = _thumb(run.image, settings.sheet_tile)
                        reach.append(iterations_to_reach(run.history, pair_totals[c.name, photo.name]))
                    pairs = acc_subset[c.name].mean()
                    gm = g.mean()
                    gm["iterations"] = settings.gatys_iters
                    gm["iterations_to_match_model"] = reach
                    row["gatys"] = gm
                    row["content_ratio"] = pairs["content"] / max(gm["content"], 1e-12)
                    row["style_ratio"] = pairs["style"] / max(gm["style"], 1e-12)
                    row["total_ratio"] = pairs["total"] / max(gm["total"], 1e-12)
                model_rows.append(row)
                log(f"  {c.name} @ {size}: content {row['all']['content']:.4f} style {row['all']['style']:.4f} grid {_grid(row):.2f} stripes {_stripes(row):.2f}"
                    + (f" | Gatys content {row['gatys']['content']:.4f} style {row['gatys']['style']:.4f}" if row["gatys"] else ""))
        for c in cases:  # a style ships if it is within the bar at every size Gatys ran at, with no grid or stripes at any size
            judged = [r for r in model_rows if r["style"] == c.name and r["gatys"]]
            clean = all(_grid(r) <= GRID_LIMIT and _stripes(r) <= STRIPE_LIMIT for r in model_rows if r["style"] == c.name)
            verdict = (clean and all(r["content_ratio"] <= SHIP_RATIO and r["style_ratio"] <= SHIP_RATIO for r in judged)) if judged else None
            for r in model_rows:
                if r["style"] == c.name:
                    r["ships"] = verdict
        rows += model_rows
        summaries += _summaries(model_name, model.method, model_rows, sizes, spec)
        del stylizer, model

    report = {
        "settings": {**asdict(settings), "photos": [p.name for p in photos], "gatys_photos": [p.name for p in subset],
                     "device": str(device), "torch_threads": torch.get_num_threads(), "ship_ratio": SHIP_RATIO,
                     "grid_limit": GRID_LIMIT, "stripe_limit": STRIPE_LIMIT},
        "summary": summaries, "rows": rows, "skipped_styles": skipped,
    }
    (out / "eval.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "eval.md").write_text(markdown_report(report))
    for size in sizes:
        contact_sheet(out / f"contact-{size}.png", sheet_photos, size, sheet[size], gatys_images[size],
                      style_paths, rows, model_specs, tile=settings.sheet_tile)
    return report


def _grid(row: dict[str, Any]) -> float:
    """The row's checkerboard score (worst period, ×photo); 0 when no output was scored."""
    return row["grid"]["worst"] if row.get("grid") else 0.0


def _stripes(row: dict[str, Any]) -> float:
    """The row's stripe score (worst axis, ×photo; fauve.artifacts.StripeMeter); 0 when none was scored."""
    return row["stripes"]["worst"] if row.get("stripes") else 0.0


def _vgg_for(shared: Scorer, spec: LossSpec) -> Any:
    """Reuse a loaded VGG16 when it reaches deep enough for ``spec``'s layers."""
    from fauve.vgg import TAP_INDEX

    need = max(TAP_INDEX[t] for t in spec.content_layers + spec.style_layers)
    return shared.vgg if len(shared.vgg.layers) > need else None


def _summaries(model_name: str, method: str, rows: list[dict[str, Any]], sizes: Sequence[int], spec: LossSpec) -> list[dict[str, Any]]:
    """Per model and size: the mean over its (trained) styles; ratios of the means on the Gatys pairs."""
    out = []
    for size in sizes:
        rs = [r for r in rows if r["size"] == size and not r["unseen"]] or [r for r in rows if r["size"] == size]
        mean = lambda key, part: sum(r[part][key] for r in rs) / len(rs)  # noqa: E731
        s: dict[str, Any] = {"model": model_name, "method": method, "size": size, "styles": len(rs),
                             "content": mean("content", "all"), "style": mean("style", "all"), "total": mean("total", "all"),
                             "seconds": mean("seconds", "all"), "grid": max(_grid(r) for r in rs), "stripes": max(_stripes(r) for r in rs), "loss": spec.describe(),
                             "gatys": None, "ships": None}
        judged = [r for r in rs if r["gatys"]]
        if judged:
            g = {k: sum(r["gatys"][k] for r in judged) / len(judged) for k in ("content", "style", "total", "seconds")}
            p = {k: sum(r["pairs"][k] for r in judged) / len(judged) for k in ("content", "style", "total")}
            s["gatys"] = {**g, "styles": len(judged)}
            s["pairs"] = p
            s["content_ratio"], s["style_ratio"] = p["content"] / max(g["content"], 1e-12), p["style"] / max(g["style"], 1e-12)
            s["styles_shipping"] = sum(1 for r in judged if r.get("ships"))
            s["ships"] = (s["content_ratio"] <= SHIP_RATIO and s["style_ratio"] <= SHIP_RATIO and s["grid"] <= GRID_LIMIT
                          and s["stripes"] <= STRIPE_LIMIT)
        out.append(s)
    return out


# -- the report ---------------------------------------------------------------------------------
def _f(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _verdict(v: bool | None) -> str:
    return "–" if v is None else ("**yes**" if v else "no")


def summary_table(report: dict[str, Any]) -> str:
    """One row per model and size (mean over its styles): the table for the README."""
    st = report["settings"]
    lines = [
        f"| model | px | styles | content | style | s/img | grid ×photo | stripes ×photo | Gatys content | Gatys style | Gatys s/pair | content ×G | style ×G | ships (≤{SHIP_RATIO}×, grid ≤{GRID_LIMIT:g}, stripes ≤{STRIPE_LIMIT:g}) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in report["summary"]:
        g = s.get("gatys")
        ships = _verdict(s["ships"])
        if g and s["styles"] > 1:
            ships += f" ({s['styles_shipping']}/{g['styles']} styles)"
        lines.append(
            f"| {s['model']} | {s['size']} | {s['styles']} | {_f(s['content'])} | {_f(s['style'])} | {_f(s['seconds'], 2)} | {_f(s.get('grid'), 2)} | {_f(s.get('stripes'), 2)} | "
            + (f"{_f(g['content'])} | {_f(g['style'])} | {_f(g['seconds'], 0)} | {_f(s['content_ratio'], 2)} | {_f(s['style_ratio'], 2)} | "
               if g else "– | – | – | – | – | ")
            + f"{ships} |")
    lines.append("")
    gatys = (f"Gatys: {st['gatys_iters']} L-BFGS iterations on {len(st['gatys_photos'])} photo(s) ({', '.join(st['gatys_photos'])}) "
             f"× the same styles; ratios compare the model with Gatys on those same pairs. " if st["gatys_photos"] else "No Gatys runs. ")
    lines.append(f"Losses: the mean over {len(st['photos'])} photos (and the model's styles) of the normalised losses of the "
                 f"model's own training recipe. {gatys}"
                 f"Grid ×photo: how much more strongly the outputs repeat on the 2/4/8 px upsampling lattice than the photos "
                 f"(fauve.artifacts; worst period, worst style; ≈1 is clean, a visible checkerboard is ≫{GRID_LIMIT:g}). "
                 f"Stripes ×photo: how far the outputs' spectrum stands out along a frequency axis (fine parallel lines off the "
                 f"lattice, e.g. hatching or colour bands), over the photos' (worst axis, worst style; ≈1 is clean). "
                 f"Times on {st['device']} ({st['torch_threads']} threads), networks run in {st.get('backend', 'torch')}.")
    return "\n".join(lines)


def markdown_report(report: dict[str, Any]) -> str:
    st = report["settings"]
    parts = [
        "# fauve eval",
        "",
        f"Content: {len(st['photos'])} photo(s) from {', '.join(st['content'])}; sizes {', '.join(map(str, st['sizes']))} px (long side); "
        f"Gatys (L-BFGS, {st['gatys_iters']} iterations, init {st['gatys_init']}) on {', '.join(st['gatys_photos']) or 'no photos'} "
        f"at {', '.join(map(str, st['gatys_sizes'] or st['sizes']))} px. A style ships when its content and style losses on the "
        f"Gatys pairs are each ≤ {SHIP_RATIO}× Gatys's at every size and its grid and stripe scores are ≤ {GRID_LIMIT:g} / "
        f"{STRIPE_LIMIT:g} at every size.",
        "",
        "## Per model",
        "",
        summary_table(report),
        "",
        "## Per style",
        "",
        "| model | style | px | content | style | total | s/img | grid ×photo | stripes ×photo | on Gatys pairs: content | style | total | Gatys content | style | total | s/pair | it. to match | content ×G | style ×G | ships |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for r in report["rows"]:
        a, p, g = r["all"], r["pairs"], r["gatys"]
        style = r["style"] + (" (unseen)" if r["unseen"] else "")
        line = (f"| {r['model']} | {style} | {r['size']} | {_f(a['content'])} | {_f(a['style'])} | {_f(a['total'])} | {_f(a['seconds'], 2)} | "
                f"{_f(r['grid']['worst'] if r.get('grid') else None, 2)} | {_f(r['stripes']['worst'] if r.get('stripes') else None, 2)} | ")
        line += (f"{_f(p['content'])} | {_f(p['style'])} | {_f(p['total'])} | " if p else "– | – | – | ")
        if g:
            reach = ", ".join("never" if v is None else str(v) for v in g["iterations_to_match_model"])
            line += (f"{_f(g['content'])} | {_f(g['style'])} | {_f(g['total'])} | {_f(g['seconds'], 0)} | {reach} | "
                     f"{_f(r['content_ratio'], 2)} | {_f(r['style_ratio'], 2)} | {_verdict(r.get('ships'))} |")
        else:
            line += "– | – | – | – | – | – | – | – |"
        parts.append(line)
    parts += ["", "\"it. to match\": the L-BFGS iteration at which Gatys's total loss first falls to the model's on that photo "
              "(Johnson et al., Fig. 5), per Gatys photo; \"never\" when the model's loss is below Gatys's final one.", ""]
    if report["skipped_styles"]:
        parts.append("Styles without an image among --styles (not evaluated): "
                     + "; ".join(f"{m}: {', '.join(v)}" for m, v in report["skipped_styles"].items()))
    parts += ["", "Contact sheets: " + ", ".join(f"`contact-{s}.png`" for s in st["sizes"]), ""]
    return "\n".join(parts)


# -- contact sheet ------------------------------------------------------------------------------
def _thumb(rgb: np.ndarray, tile: int) -> np.ndarray:
    """A uint8 copy with its long side at ``tile`` px (the sheet keeps thumbnails only)."""
    from PIL import Image

    img = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
    h, w = rgb.shape[:2]
    scale = tile / max(h, w)
    return np.asarray(img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS))


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` cut with an ellipsis so that it fits ``width`` px (labels must not run into the thumbnails)."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def contact_sheet(path: Path, photos: Sequence[Path], size: int, outputs: dict[tuple[str, str], dict[str, np.ndarray]],
                  gatys_images: dict[tuple[str, str], dict[str, np.ndarray]], style_paths: dict[str, Path],
                  rows: list[dict[str, Any]], model_specs: dict[str, str], tile: int = 160) -> Path:
    """Photos across; the photos themselves, then per style one row per model and one row of
    Gatys's results per loss recipe. Rows are labelled with the model, the style, the mean losses
    (on the Gatys photos, which are the columns; without Gatys on every photo evaluated) and a
    thumbnail of the style image."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=12)
    label_w, pad, top = 230, 4, 20
    thumbs = [_thumb(load_tensor(p, tile)[0].permute(1, 2, 0).numpy(), tile) for p in photos]
    th = max(t.shape[0] for t in thumbs)
    by_key = {(r["model"], r["style"]): r for r in rows if r["size"] == size}

    order: list[tuple[bool, str, str, str, dict[str, np.ndarray]]] = []  # (gatys?, title, style, losses, images)
    for style in dict.fromkeys(s for _, s in outputs):
        models = [m for (m, s) in outputs if s == style]
        image = style_paths[style].name if style in style_paths else None
        for spec in dict.fromkeys(model_specs.get(m) for m in models):  # models on the same loss, then their Gatys row
            same = [m for m in models if model_specs.get(m) == spec]
            for model in same:
                r = by_key.get((model, style))
                mean = r and (r["pairs"] or r["all"])
                losses = f"c {_f(mean['content'])}  s {_f(mean['style'])}" if mean else ""
                order.append((False, model, style, losses, outputs[model, style]))
            images = gatys_images.get((image, spec))
            if not images:
                continue
            g = next((by_key[m, style]["gatys"] for m in same if by_key.get((m, style)) and by_key[m, style]["gatys"]), None)
            losses = f"c {_f(g['content'])}  s {_f(g['style'])}" if g else ""
            title = f"Gatys {g['iterations']} it." if g else "Gatys"
            if len(same) < len(models):  # several loss recipes for this style: say whose
                title += f" ({', '.join(same)[:22]})"
            order.append((True, title, style, losses, images))

    width = label_w + len(photos) * (tile + pad) + pad
    height = top + (len(order) + 1) * (th + pad) + pad
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    on_gatys_photos = any(r["pairs"] for r in by_key.values())
    n_all = max((r["all"]["n"] for r in by_key.values()), default=0)
    where = "these photos" if on_gatys_photos else f"all {n_all} photos evaluated"
    draw.text((pad, 3), f"fauve eval at {size} px (c, s: mean content and style loss on {where})", fill="black", font=font)
    y = top
    draw.text((pad, y + 4), "content", fill="black", font=font)
    for i, t in enumerate(thumbs):
        sheet.paste(Image.fromarray(t), (label_w + pad + i * (tile + pad), y))
    y += th + pad
    style_thumbs: dict[str, Image.Image] = {}
    for is_gatys, title, style, losses, images in order:
        if style in style_paths:
            if style not in style_thumbs:
                st = Image.fromarray(_thumb(load_tensor(style_paths[style], 128)[0].permute(1, 2, 0).numpy(), 128))
                st.thumbnail((64, th - 4), Image.LANCZOS)
                style_thumbs[style] = st
            sheet.paste(style_thumbs[style], (label_w - 68, y + 2))
        text_w = label_w - 72 if style in style_paths else label_w - pad
        draw.text((pad, y + 4), _fit(draw, title, font, text_w), fill="darkred" if is_gatys else "black", font=font)
        draw.multiline_text((pad, y + 20), f"{_fit(draw, style, font, text_w)}\n{losses}", fill="dimgray", font=font,
                            spacing=2)
        for i, p in enumerate(photos):
            if p.name in images:
                sheet.paste(Image.fromarray(images[p.name]), (label_w + pad + i * (tile + pad), y))
        y += th + pad
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
