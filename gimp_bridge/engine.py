"""What the server stylizes with: the style list, the model cache and the one pipeline.

The styles are those of every model folder found under the ``--models`` folders, then the catalog's
(``fauve.catalog.list_styles(available_only=True)``: bundled, cached and Hub models). Style ids
follow the catalog: ``<model>`` for a single-style model, ``<model>/<style>`` for each style of a
multi-style model (``<model>:<style>`` is accepted too); a model that takes any style image
(adain, msgnet) is offered for style images by its model id. Each model is loaded once, on first use, and
kept with its ``fauve.pipeline.Stylizer`` for the life of the server; both the bridge and the
Gradio app call :meth:`Engine.stylize`, always from a job-queue worker thread.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fauve.errors import FauveError, UnknownStyleError

log = logging.getLogger("fauve.serve")

PRESERVE_CHOICES = ("none", "luminance", "histogram")
THUMB_SIDE = 128
DEFAULT_TILE = 1024  # images with a side above this run in tiles: bounded device memory, and progress


@dataclass(frozen=True)
class StyleInfo:
    """One selectable style: a (model, style-within-model) pair, or an arbitrary-style model."""

    id: str
    name: str
    method: str
    model: str  # the model id (mix and style images are given per model)
    style: str  # the style's name inside the model
    title: str = ""
    source: str = "folder"
    license: str | None = None
    accepts_style_image: bool = False
    multi_style: bool = False
    thumbnail: str | None = None  # an image file to show, when the catalog has one

    @property
    def label(self) -> str:
        title = self.title or self.name
        return f"{title} · {self.method}" + (f" ({self.model})" if self.multi_style or title != self.model else "")

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "title": self.title or self.name, "label": self.label, "method": self.method, "model": self.model,
                "source": self.source, "license": self.license, "accepts_style_image": self.accepts_style_image,
                "multi_style": self.multi_style}


@dataclass(frozen=True)
class ModelInfo:
    id: str
    method: str
    path: str | None  # the model folder; None for a catalog model not downloaded yet
    style_names: tuple[str, ...]
    accepts_style_image: bool
    multi_style: bool
    source: str = "folder"  # folder (--models) | bundled | cached | hub (the catalog's sources)
    license: str | None = None
    catalog_name: str | None = None  # set for catalog models: loaded through fauve.catalog.resolve_style


@dataclass
class StyleRequest:
    """The stylization parameters shared by the bridge, the app and the CLI."""

    style: str | None = None  # a style id from list_styles()
    model: str | None = None  # a model id, with mix= or style_image=
    mix: dict[str, float] | None = None
    style_image: np.ndarray | None = None
    strength: float = 1.0
    preserve_color: str = "none"
    style_scale: float = 1.0
    tile: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_mix(text: str) -> dict[str, float]:
    """``"a:0.7,b:0.3"`` → ``{"a": 0.7, "b": 0.3}`` (names without weights get 1)."""
    weights: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.rpartition(":") if ":" in part else (part, "", "1")
        name = name.strip()
        try:
            weight = float(value)
        except ValueError:
            raise FauveError(f"mix weight {value!r} for {name!r} is not a number.", hint="Write the mix as name:weight,name:weight, e.g. mosaic:0.7,candy:0.3.") from None
        if not name or weight < 0 or weight != weight:
            raise FauveError(f"mix entry {part!r} is not name:weight with a weight >= 0.", hint="Write the mix as name:weight,name:weight, e.g. mosaic:0.7,candy:0.3.")
        weights[name] = weights.get(name, 0.0) + weight
    if not weights or sum(weights.values()) <= 0:
        raise FauveError(f"mix {text!r} names no style with a positive weight.", hint="Write the mix as name:weight,name:weight, e.g. mosaic:0.7,candy:0.3.")
    return weights


def resolve_device(device: str) -> str:
    """auto | cpu | cuda[:N] | mps → the device the pipeline will use, as a string."""
    from fauve.pipeline import resolve_device as pipeline_device

    return str(pipeline_device(device))


def _model_folders(roots: Iterable[str | Path]) -> list[Path]:
    """Model folders (config.json + model.safetensors) named by, or directly inside, each root."""
    found: list[Path] = []
    for root in roots:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise FauveError(f"--models {root}: no such folder.", hint="Pass a model folder (config.json + model.safetensors) or a folder of them.")
        candidates = [root] if (root / "config.json").is_file() else sorted(p for p in root.iterdir() if (p / "config.json").is_file())
        if not candidates:
            raise FauveError(f"--models {root}: no model folders in it (none has a config.json).",
                             hint="Train one with `fauve train`, or pull one with `fauve hub pull owner/name`.")
        found += candidates
    return found


def _thumbnail_file(folder: Path, style: str, single: bool) -> str | None:
    """A style's picture in a model folder: thumbnails/<style>.jpg|png (the catalog's layout), or for a
    single-style model thumbnail.png|jpg."""
    names = [f"thumbnails/{style}.jpg", f"thumbnails/{style}.png"]
    if single:
        names += ["thumbnail.png", "thumbnail.jpg"]
    for name in names:
        if (folder / name).is_file():
            return str(folder / name)
    return None


class Engine:
    """Styles, models (loaded once, cached) and the pipeline, for one device."""

    def __init__(self, model_dirs: Iterable[str | Path] = (), device: str = "auto", precision: str = "auto",
                 use_catalog: bool = True, tile: int = DEFAULT_TILE, backend: str = "torch") -> None:
        self.device = resolve_device(device)
        self.precision = precision
        self.backend = backend
        self.tile = tile
        self._models: dict[str, ModelInfo] = {}
        self._styles: dict[str, StyleInfo] = {}
        self._stylizers: dict[str, Any] = {}
        self._thumbs: dict[str, bytes | None] = {}
        self._load_lock = threading.Lock()
        self._thumb_lock = threading.Lock()
        for folder in _model_folders(model_dirs):
            self._add_folder(folder)
        if use_catalog:
            self._add_catalog()
        if not self._models:
            raise FauveError("No style models to serve: no catalog style is available here and no --models folder was given.",
                             hint="Pass --models FOLDER (a model folder from `fauve train`, or a folder of them), "
                                  "or `fauve hub pull owner/name` a catalog style (`fauve styles` lists them).")

    # -- discovery --------------------------------------------------------------------------------
    def _add_model(self, info: ModelInfo, extras: dict[str, dict[str, Any]] | None = None) -> None:
        """Register a model and one style per named style (``extras``: title/thumbnail per style)."""
        model_id, n = info.id, 2
        while model_id in self._models:  # two folders with the same name: keep both
            model_id, n = f"{info.id}-{n}", n + 1
        info = ModelInfo(**{**info.__dict__, "id": model_id})
        self._models[model_id] = info
        for style in info.style_names:
            style_id = f"{model_id}/{style}" if info.multi_style else model_id
            more = (extras or {}).get(style, {})
            self._styles[style_id] = StyleInfo(
                id=style_id, name=style, method=info.method, model=model_id, style=style, source=info.source,
                license=info.license, accepts_style_image=info.accepts_style_image, multi_style=info.multi_style,
                title=more.get("title") or "", thumbnail=more.get("thumbnail"))

    def _add_folder(self, folder: Path) -> None:
        try:
            config = json.loads((folder / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise FauveError(f"{folder}/config.json cannot be read: {err}", hint="Re-export or re-download that model.") from err
        from fauve.models import METHODS

        method = config.get("method")
        if method not in METHODS:
            raise FauveError(f"{folder}: unknown method {method!r} in config.json.", hint=f"Known methods: {', '.join(sorted(METHODS))}.")
        cls = METHODS[method]
        names = tuple(config.get("style_names") or ())
        extras = {name: {"thumbnail": _thumbnail_file(folder, name, single=len(names) == 1)} for name in names}
        self._add_model(ModelInfo(id=folder.name, method=method, path=str(folder), style_names=names,
                                  accepts_style_image=cls.accepts_style_image,
                                  multi_style=cls.multi_style and (len(names) > 1 or cls.accepts_style_image),
                                  license=config.get("license")), extras)

    def _add_catalog(self) -> None:
        """The catalog's available models (bundled, cached, or on the Hub when online); nothing is downloaded yet."""
        from fauve import catalog

        by_model: dict[str, list[Any]] = {}
        for entry in catalog.list_styles(available_only=True):
            by_model.setdefault(entry.model, []).append(entry)
        for name, entries in by_model.items():
            first = entries[0]
            named = [e for e in entries if e.index is not None]
            self._add_model(ModelInfo(id=name, method=first.method, path=first.path, catalog_name=name,
                                      style_names=tuple(e.name for e in named), accepts_style_image=first.accepts_style_image,
                                      multi_style=first.multi_style, source=first.source, license=first.license),
                            {e.name: {"title": e.title, "thumbnail": e.thumbnail} for e in named})

    # -- lookups ----------------------------------------------------------------------------------
    def list_styles(self) -> list[StyleInfo]:
        return list(self._styles.values())

    def list_models(self) -> list[ModelInfo]:
        return list(self._models.values())

    def models_loaded(self) -> list[str]:
        return sorted(self._stylizers)

    def style(self, style_id: str) -> StyleInfo:
        if style_id in self._styles:
            return self._styles[style_id]
        head, sep, tail = style_id.partition(":")
        if sep and f"{head}/{tail}" in self._styles:
            return self._styles[f"{head}/{tail}"]
        by_name = [s for s in self._styles.values() if s.name == style_id]
        if len(by_name) == 1:
            return by_name[0]
        import difflib

        close = difflib.get_close_matches(style_id, list(self._styles), n=3)
        raise UnknownStyleError(f"Unknown style {style_id!r}.",
                                hint=(f"Did you mean {', '.join(close)}? " if close else "") + "GET /bridge/v1/styles (or `fauve styles`) lists them.")

    def model(self, model_id: str) -> ModelInfo:
        if model_id in self._models:
            return self._models[model_id]
        raise UnknownStyleError(f"Unknown model {model_id!r}.", hint=f"Models on this server: {', '.join(self._models)}.")

    def check_size(self, width: int, height: int) -> None:
        from fauve_bridge.imagecodec import RequestError
        from fauve.imageio import MIN_SIDE

        if min(width, height) < MIN_SIDE:
            raise RequestError(400, "too_small", f"The image is {width}x{height}; both sides must be at least {MIN_SIDE} px.",
                               f"Select an area of at least {MIN_SIDE}x{MIN_SIDE} pixels.")

    def check_request(self, req: StyleRequest) -> tuple[ModelInfo, dict[str, Any]]:
        """Validate ``req`` against the models; return the model and the pipeline's style arguments."""
        if req.preserve_color not in PRESERVE_CHOICES:
            raise FauveError(f"preserve_color {req.preserve_color!r} is not one of {', '.join(PRESERVE_CHOICES)}.", hint="Pick none, luminance or histogram.")
        if req.style_image is not None:
            info = self.model(req.model) if req.model else None
            if info is None and req.style:
                info = self.model(self.style(req.style).model)
            if info is None or not info.accepts_style_image:
                able = [m.id for m in self._models.values() if m.accepts_style_image]
                raise FauveError("That model cannot take a style image.",
                                 hint=f"Style images work with adain and msgnet models: {', '.join(able) or 'none on this server'}.")
            return info, {"style_image": req.style_image}
        if req.mix is not None:
            info = self.model(req.model) if req.model else self.model(self.style(req.style).model)
            unknown = [n for n in req.mix if n not in info.style_names]
            if unknown or not info.multi_style:
                raise UnknownStyleError(f"Model {info.id} cannot mix {', '.join(unknown) or 'styles'}.",
                                        hint=f"Its styles: {', '.join(info.style_names) or 'none'}; mixing needs a multi-style model (dumoulin, msgnet, adain).")
            return info, {"mix": dict(req.mix)}
        if req.style is None:
            info = self.model(req.model)
            if not info.style_names:
                raise FauveError(f"Model {info.id} has no named styles.", hint="Upload a style image for it.")
            return info, {"style": info.style_names[0]}
        style = self.style(req.style)
        return self.model(style.model), {"style": style.style}

    # -- running ----------------------------------------------------------------------------------
    def stylizer(self, model_id: str):
        """The cached pipeline for a model (loaded on first use, once, even under concurrent calls)."""
        if model_id in self._stylizers:
            return self._stylizers[model_id]
        with self._load_lock:
            if model_id not in self._stylizers:
                from fauve.models import load_model
                from fauve.pipeline import Stylizer

                info = self.model(model_id)
                if info.catalog_name:  # bundled / cached / Hub, with the catalog's fallbacks
                    from fauve.catalog import resolve_style

                    resolved = resolve_style(info.catalog_name)
                    model, where = resolved.model, f"{resolved.source} copy {resolved.path}"
                    for note in resolved.notes:
                        log.warning(note)
                else:
                    model, where = load_model(info.path), info.path
                log.info("loaded %s (%s) from %s on %s", info.id, info.method, where, self.device)
                self._stylizers[model_id] = Stylizer(model, device=self.device, precision=self.precision, backend=self.backend)
        return self._stylizers[model_id]

    def stylize(self, image: np.ndarray, req: StyleRequest, progress: Callable[[float], Any] | None = None,
                cancel: threading.Event | None = None) -> np.ndarray:
        """Stylize an (H, W, 3|4) uint8 array (alpha kept unchanged); returns the same shape and dtype."""
        info, style_args = self.check_request(req)
        stylizer = self.stylizer(info.id)
        return stylizer.run(image, strength=req.strength, preserve_color=req.preserve_color, style_scale=req.style_scale,
                            tile=self.tile_for(image.shape[1], image.shape[0], req.tile), progress=progress, cancel=cancel,
                            **style_args)

    def tile_for(self, width: int, height: int, asked: int | None = None) -> int | None:
        """The tile size for an image: the caller's, else the server's when the image is larger than one tile."""
        if asked:
            return asked
        return self.tile if self.tile and max(width, height) > self.tile else None

    # -- thumbnails -------------------------------------------------------------------------------
    def thumbnail_png(self, style_id: str) -> bytes | None:
        """A small PNG for a style: the catalog's image, or a sample rendered in that style (cached)."""
        if style_id in self._thumbs:
            return self._thumbs[style_id]
        with self._thumb_lock:
            if style_id not in self._thumbs:
                self._thumbs[style_id] = self._make_thumbnail(self.style(style_id))
        return self._thumbs[style_id]

    def _make_thumbnail(self, style: StyleInfo) -> bytes | None:
        try:
            if style.thumbnail:
                with Image.open(style.thumbnail) as img:
                    img = img.convert("RGB")
                    img.thumbnail((THUMB_SIDE, THUMB_SIDE))
                    thumb = img
            elif self.model(style.model).path is None:
                return None  # not downloaded yet: no thumbnail rather than a download at start-up
            else:
                sample = sample_image(THUMB_SIDE)  # the style applied to a bundled photo
                out = self.stylize(sample, StyleRequest(style=style.id))
                thumb = Image.fromarray(out)
            buf = io.BytesIO()
            thumb.save(buf, format="PNG")
            return buf.getvalue()
        except Exception:  # a thumbnail must never break the style list
            log.exception("no thumbnail for %s", style.id)
            return None


PAINTING_SAMPLES = ("starry_night", "great_wave")  # core/samples/SOURCES.md: the paintings; the rest are photos


def sample_paths(kind: str = "photo") -> list[Path]:
    """The bundled sample images (core/samples): ``photo`` for content, ``painting`` for style images."""
    from importlib import resources

    folder = Path(str(resources.files("fauve") / "samples"))
    if not folder.is_dir():
        return []
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
    return [p for p in images if (p.stem in PAINTING_SAMPLES) == (kind == "painting")]


def sample_image(side: int) -> np.ndarray:
    """A bundled sample photo cropped to a ``side``² square, or a synthetic scene when none is bundled."""
    paths = sample_paths("photo")
    if paths:
        with Image.open(paths[0]) as img:
            img = img.convert("RGB")
            s = min(img.size)
            img = img.crop(((img.width - s) // 2, (img.height - s) // 2, (img.width + s) // 2, (img.height + s) // 2))
            return np.asarray(img.resize((side, side), Image.LANCZOS))
    y, x = np.mgrid[0:side, 0:side] / max(side - 1, 1)
    sky = np.stack([0.35 + 0.3 * y, 0.55 + 0.25 * y, 0.95 - 0.2 * y], -1)
    hill = (y > 0.55 + 0.12 * np.sin(6 * x))[..., None]
    ground = np.stack([0.25 + 0.2 * x, 0.55 - 0.2 * y, 0.2 + 0 * x], -1)
    sun = (((x - 0.7) ** 2 + (y - 0.25) ** 2) < 0.012)[..., None]
    img = np.where(hill, ground, np.where(sun, np.array([1.0, 0.85, 0.3]), sky))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)
