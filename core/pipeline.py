"""The one inference pipeline, shared by the CLI (``fauve stylize``), the app and the GIMP bridge.

``Stylizer(model).run(image, ...)`` takes an image of any size (numpy uint8/uint16/float, H×W,
H×W×3 or H×W×4, or a PIL image), stylizes it and returns the same kind of object at the same size
with the alpha channel unchanged. Steps:

1. Convert to float RGB in [0, 1]; split off alpha.
2. Condition the model on the style: a named style or a mix of named styles (``dumoulin``,
   ``msgnet``, ``adain``), or one or more style images (``msgnet``, ``adain``).
3. Reflection-pad to the model's ``size_multiple``; run whole or in tiles; crop back.
4. Preserve colour (``fauve.color``), blend with the input by ``strength`` and by ``mask``.

Tiling. Tiles are windows of ``tile`` pixels at positions aligned to the model's total stride,
each with ``context`` pixels on every inner side that are computed and thrown away, and blended
with their neighbours by linear ramps ``overlap`` pixels wide (weights that sum to one), so seams
do not show. Instance normalisation (``ulyanov``, ``dumoulin``, ``msgnet``) and AdaIN normalise
with statistics over the whole image, which a tile on its own does not have: normalised per tile,
each tile gets its own contrast and colour cast (visible blocks). So all tiles *share* statistics:

- AdaIN: the content's mean/std at the AdaIN layer are exact — the encoder runs over the windows first and
  accumulates weighted sums with the blending weights.
- Instance norm: every layer's statistics depend on the layers before it, so one pass over the
  *whole image downscaled* to ``stats_pixels`` records them all (pooled mean and variance per
  layer, ``SharedNormStats``); every tile then normalises with these frozen statistics. This is
  an approximation (statistics drift with scale): no seams, but the result differs from the
  untiled one by a few grey levels on average (measured on a partly trained Starry Night model:
  mean |Δ| ≈ 10/255 at half resolution, 18/255 at 0.35×; per-tile normalisation: 27/255 and
  visible blocks). ``exact_stats=True`` (``--exact-stats``) then computes each layer's statistics
  exactly at full resolution, layer after layer over the tiles (Gauss–Seidel order: a layer's
  statistics depend on those before it; updating all layers at once from one pass diverges), at
  the cost of about half a pass per norm layer.

An image of at most ``stats_pixels`` pixels (default: 4 tiles) runs untiled, exactly, since the
statistics pass would need that memory anyway. Memory is bounded by max(one tile, stats_pixels).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from fauve import color
from fauve.color_profile import ColorProfile, from_srgb, to_srgb
from fauve.errors import Cancelled, FauveError, InputImageError, OutOfMemory, UnknownStyleError
from fauve.imageio import MIN_SIDE, from_float01, pil_to_float, read_image, to_float01
from fauve.models.base import StyleModel, load_model
from fauve.models.layers import EPS, ConditionalInstanceNorm, mean_std

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
STYLE_BASE_SIZE = 512  # long side of a style image at style_scale 1 (MSG-Net's and AdaIN's --style-size)
DEFAULT_OVERLAP = 32
DEFAULT_CONTEXT = 32
MIN_TILE = 64
STATS_TILES = 4  # default statistics budget, in tiles: an image up to 4 tiles runs whole


# -- device and precision ------------------------------------------------------------------------
def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` → cuda, else mps, else cpu; an unavailable device is a clear error."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise FauveError("CUDA was asked for but no CUDA GPU is available.", "Use --device cpu (or auto).", code="bad_device")
        return torch.device(name)
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise FauveError("MPS was asked for but is not available.", "Use --device cpu (or auto).", code="bad_device")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise FauveError(f"Unknown device {name!r}.", f"Use one of {', '.join(DEVICES)}.", code="bad_device")


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32. Half precision is used on GPUs only; on the CPU every
    precision runs in fp32. ``auto`` is fp16 on CUDA and MPS."""
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise FauveError(f"Unknown precision {precision!r}.", f"Use one of {', '.join(PRECISIONS)}.", code="bad_option")
    if device.type == "cpu" or precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    return torch.float16


def _is_oom(err: BaseException) -> bool:
    if isinstance(err, getattr(torch, "OutOfMemoryError", ())):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text or "not enough memory" in text)


# -- images in and out ---------------------------------------------------------------------------
@dataclass
class _Kind:
    """How to turn the float result back into what the caller passed in."""

    pil: bool
    dtype: np.dtype | None = None
    gray2d: bool = False
    original: Any = None
    profile: ColorProfile | None = None  # a PIL input's ICC profile (fauve.color_profile)


def _as_float(image: Any) -> tuple[np.ndarray, np.ndarray | None, _Kind]:
    if isinstance(image, Image.Image):
        srgb, profile = to_srgb(image)  # an embedded ICC profile: the net sees sRGB, the result goes back
        data = pil_to_float(srgb)
        return data.rgb, data.alpha, _Kind(pil=True, original=image, profile=profile)
    array = np.asarray(image)
    if array.ndim == 2:
        rgb, alpha = np.repeat(to_float01(array)[:, :, None], 3, axis=2), None
        return rgb, alpha, _Kind(pil=False, dtype=array.dtype, gray2d=True, original=array)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InputImageError(f"Expected an H×W, H×W×3 or H×W×4 image, got shape {array.shape}.", "Pass RGB or RGBA pixels.")
    if array.shape[2] == 1:
        return np.repeat(to_float01(array), 3, axis=2), None, _Kind(pil=False, dtype=array.dtype, original=array)
    rgb = to_float01(array[:, :, :3])
    alpha = to_float01(array[:, :, 3]) if array.shape[2] == 4 else None
    return rgb, alpha, _Kind(pil=False, dtype=array.dtype, original=array)


def _back(rgb: np.ndarray, kind: _Kind) -> Any:
    """Float RGB → the caller's kind; the alpha channel is copied untouched from the input."""
    if kind.pil:
        original: Image.Image = kind.original
        pixels = from_float01(rgb, np.uint8)
        if kind.profile is not None:
            pixels = from_srgb(pixels, kind.profile)
        out = Image.fromarray(pixels, "RGB")
        if kind.profile is not None and kind.profile.tags_output:
            out.info["icc_profile"] = kind.profile.icc  # Pillow's save() embeds it
        if "A" in original.getbands() or "transparency" in original.info:
            alpha = original.getchannel("A") if "A" in original.getbands() else original.convert("RGBA").getchannel("A")
            out.putalpha(alpha)
        return out
    original = kind.original
    pixels = from_float01(rgb, kind.dtype)
    if original.ndim == 3 and original.shape[2] == 4:
        return np.concatenate([pixels, original[:, :, 3:4]], axis=2)
    return pixels


def _load_style_image(image: Any) -> np.ndarray:
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        return read_image(image).rgb
    rgb, _, _ = _as_float(image)
    return rgb


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float()


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def _resize_np(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return _resize(_to_tensor(rgb), size)[0].permute(1, 2, 0).numpy()


# -- shared normalisation statistics (for tiling) ------------------------------------------------
class StopForward(Exception):
    """Raised inside a forward pass once the statistics being accumulated have been read."""


class SharedNormStats:
    """Make every instance-norm layer of ``model`` use statistics shared across calls.

    ``mode = "record"``: each layer normalises with the mean and variance pooled over the batch
    *and* the spatial dimensions (a batch of crops acts as one image) and stores them;
    ``mode = "frozen"``: each layer normalises with the stored statistics;
    ``mode = "accumulate"``: layers before ``target`` normalise with the stored statistics, the
    ``target`` layer adds Σw·x, Σw·x², Σw over its input (``weight``: the tile's blending weights at
    full resolution, average-pooled to the layer's) and stops the forward pass (``StopForward``).
    Used as a context manager: the layers' ``forward`` are replaced on entry and restored on exit.
    ``order`` lists the layers in the order the forward pass calls them (filled while recording).
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, (nn.InstanceNorm2d, ConditionalInstanceNorm))]
        self.stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.mode = "record"
        self.order: list[int] = []
        self.target: int | None = None
        self.weight: torch.Tensor | None = None
        self.sums: list[torch.Tensor] = []

    def __enter__(self) -> "SharedNormStats":
        for layer in self.layers:
            layer.forward = functools.partial(self._forward, layer)  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        for layer in self.layers:
            layer.__dict__.pop("forward", None)

    def _forward(self, layer: nn.Module, x: torch.Tensor, style_weights: torch.Tensor | None = None) -> torch.Tensor:
        xf = x.float()
        if self.mode == "accumulate" and id(layer) == self.target:
            k = self.weight.shape[-1] // xf.shape[-1]
            w = (F.avg_pool2d(self.weight, k) if k > 1 else self.weight).to(xf.device)
            sums = [(xf * w).sum(dim=(0, 2, 3)).double().cpu(), (xf * xf * w).sum(dim=(0, 2, 3)).double().cpu(),
                    w.sum().double().cpu().expand(xf.shape[1])]
            self.sums = sums if not self.sums else [a + b for a, b in zip(self.sums, sums)]
            raise StopForward
        if self.mode == "record":
            mean = xf.mean(dim=(0, 2, 3))
            var = xf.var(dim=(0, 2, 3), unbiased=False)
            self.stats[id(layer)] = (mean, var)
            if id(layer) not in self.order:
                self.order.append(id(layer))
        else:
            mean, var = self.stats[id(layer)]
        y = (xf - mean.view(1, -1, 1, 1)) * torch.rsqrt(var.view(1, -1, 1, 1) + getattr(layer, "eps", EPS))
        if isinstance(layer, ConditionalInstanceNorm):
            if style_weights is None:
                raise ValueError("conditional instance norm needs style weights")
            w = style_weights.float()
            y = y * (w @ layer.gamma.float())[:, :, None, None] + (w @ layer.beta.float())[:, :, None, None]
        elif getattr(layer, "affine", False):
            y = y * layer.weight.float().view(1, -1, 1, 1) + layer.bias.float().view(1, -1, 1, 1)
        return y.to(x.dtype)


# -- style conditioning --------------------------------------------------------------------------
@dataclass
class Conditioning:
    """What the model is run with; built once per ``run`` by :meth:`Stylizer.condition`."""

    style_weights: torch.Tensor | None = None  # (N,) over named styles (dumoulin, msgnet, adain)
    target_gram: torch.Tensor | None = None  # (1, C, C) for msgnet style images
    style_stats: tuple[torch.Tensor, torch.Tensor] | None = None  # (K, 512) each for adain style images
    alpha: float = 1.0  # adain content–style trade-off
    masks: torch.Tensor | None = None  # (K, H, W) adain regional styles, image resolution
    content_scale: float = 1.0  # named styles: the content is resized by this before stylizing
    description: str = ""


def _parse_weights(mix: Mapping[Any, float], names: Sequence[str], lookup: Callable[[Any], int]) -> torch.Tensor:
    weights = torch.zeros(len(names))
    for key, value in mix.items():
        value = float(value)
        if value < 0 or not math.isfinite(value):
            raise FauveError(f"Mix weight for {key!r} is {value}; weights must be ≥ 0.", "Give weights like a=0.5,b=0.5.", code="bad_option")
        weights[lookup(key)] += value
    total = float(weights.sum())
    if total <= 0:
        raise FauveError("All mix weights are zero.", "Give at least one positive weight, e.g. a=1.", code="bad_option")
    return weights / total  # a convex combination (Dumoulin et al.'s interpolation)


class Stylizer:
    """Runs one fauve model on images of any size.

    ``model``: a :class:`~fauve.models.base.StyleModel` or a model folder / Hub repo id.
    ``device``: auto | cpu | cuda | mps. ``precision``: auto | fp32 | fp16 | bf16 (autocast on GPUs
    only). ``channels_last``: NHWC memory layout on GPUs. ``seed``: torch's seed before every run.
    ``stats_pixels``: memory budget of the statistics pass when tiling, in pixels (default: 4 tiles);
    images up to this size run untiled. ``exact_stats``: when tiling an instance-norm model, compute
    every norm layer's statistics exactly at full resolution (tiled = untiled up to the tile borders,
    at the cost of about one extra pass per two norm layers) instead of from the downscaled image.
    ``backend``: torch | onnxruntime (``fauve.onnx_backend``: fp32 ONNX graphs built from the model
    on first use and cached, or the plain graph read from ``onnx_path``).
    One ``run`` at a time per Stylizer (a lock serialises concurrent callers).
    """

    def __init__(self, model: StyleModel | str, device: str | torch.device = "auto", precision: str = "auto",
                 channels_last: bool = True, *, seed: int = 0, stats_pixels: int | None = None,
                 backend: str = "torch", onnx_path: str | None = None, exact_stats: bool = False) -> None:
        self.device = resolve_device(device)
        self.autocast_dtype = resolve_precision(precision, self.device)
        self.precision = {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.autocast_dtype]
        if not isinstance(model, nn.Module):
            model = load_model(model)
        self.model: StyleModel = model.eval().to(self.device)
        self.channels_last = channels_last and self.device.type != "cpu"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.seed = seed
        self.stats_pixels = stats_pixels
        # Tiles normalise with shared statistics (see the module docstring); False gives every
        # tile its own instance-norm statistics, the naive way, kept for comparison in tests.
        self.share_stats = True
        self.exact_stats = exact_stats
        self._lock = threading.Lock()
        from fauve.onnx_backend import OnnxRunner, resolve_backend

        self.backend = resolve_backend(backend)
        self._onnx = None
        if self.backend == "onnxruntime":
            if self.autocast_dtype is not None and precision not in (None, "auto"):
                raise FauveError(f"The onnxruntime backend runs in fp32, not {precision}.", "Use --precision fp32 (or auto), or --backend torch.", code="bad_option")
            self.autocast_dtype, self.precision = None, "fp32"
            self._onnx = OnnxRunner(self.model, self.device, onnx_path)

    # -- style names ----------------------------------------------------------------------------
    @property
    def method(self) -> str:
        return self.model.method

    @property
    def style_names(self) -> list[str]:
        return list(self.model.style_names)

    def style_index(self, style: str | int) -> int:
        """Index of a named style; an unknown name raises UnknownStyleError listing close names."""
        names = self.style_names
        if isinstance(style, (int, np.integer)) or (isinstance(style, str) and style.isdigit() and style not in names):
            index = int(style)
            if 0 <= index < len(names):
                return index
            raise UnknownStyleError(f"Style index {index} is out of range; this model has {len(names)} styles.",
                                    f"Use 0..{len(names) - 1} or a name: {', '.join(names)}.")
        if style in names:
            return names.index(style)
        folded = {n.lower().replace("-", "_").replace(" ", "_"): i for i, n in enumerate(names)}
        key = str(style).lower().replace("-", "_").replace(" ", "_")
        if key in folded:
            return folded[key]
        close = difflib.get_close_matches(str(style), names, n=5, cutoff=0.5)
        hint = f"Did you mean {', '.join(close)}?" if close else f"Known styles: {', '.join(names[:20]) or '(none)'}."
        raise UnknownStyleError(f"This {self.method} model has no style {style!r}.", hint)

    # -- conditioning ---------------------------------------------------------------------------
    def condition(self, *, style: str | int | None = None, mix: Mapping[Any, float] | None = None,
                  style_image: Any = None, strength: float = 1.0, style_scale: float = 1.0,
                  mask: np.ndarray | None = None, image_size: tuple[int, int] | None = None) -> Conditioning:
        """Resolve the style options into what the model is run with (see :meth:`run`)."""
        model, method = self.model, self.method
        if not 0.0 <= strength <= 1.0:
            raise FauveError(f"Strength {strength} is outside 0..1.", "Use a value between 0 (the photo) and 1 (full style).", code="bad_option")
        if not 0.1 <= style_scale <= 10.0:
            raise FauveError(f"Style scale {style_scale} is outside 0.1..10.", "Typical values are 0.5 (finer strokes) to 2 (larger strokes).", code="bad_option")
        cond = Conditioning(alpha=strength if method == "adain" else 1.0)
        if style_image is not None:
            if not model.accepts_style_image:
                raise FauveError(f"A {method} model cannot take a style image; it knows only its trained styles ({', '.join(self.style_names)}).",
                                 "Use an msgnet or adain model for arbitrary style images, or pick a trained style.", code="bad_option")
            if style is not None:
                raise FauveError("Give either a named style or a style image, not both.", "Drop --style or --style-image.", code="bad_option")
            images = list(style_image) if isinstance(style_image, (list, tuple)) else [style_image]
            tensors = [self._style_tensor(_load_style_image(img), style_scale) for img in images]
            weights = torch.full((len(images),), 1.0 / len(images))
            if mix:
                weights = _parse_weights(mix, [str(i) for i in range(len(images))], lambda k: self._image_index(k, len(images)))
            with torch.inference_mode():
                if method == "msgnet":
                    grams = torch.cat([model.style_gram(t.to(self.device)).float() for t in tensors])
                    cond.target_gram = (weights.to(grams.device)[:, None, None] * grams).sum(0, keepdim=True)
                else:
                    stats = [model.style_stats(t.to(self.device)) for t in tensors]
                    cond.style_stats = (torch.cat([m for m, _ in stats]).float(), torch.cat([s for _, s in stats]).float())
                    cond.style_weights = weights
            cond.description = f"{len(images)} style image(s) at scale {style_scale:g}"
            if method == "adain" and mask is not None and len(images) >= 2:
                cond.masks = self._region_masks(mask, len(images), image_size)
            return cond
        # named styles
        names = self.style_names
        if not names:
            raise FauveError(f"This {method} model has no trained styles.", "Pass a style image (--style-image).", code="bad_option")
        if mix:
            if not model.multi_style:
                raise FauveError(f"A {method} model holds one style; it cannot mix styles.", "Mix styles with a dumoulin, msgnet or adain model.", code="bad_option")
            if style is not None:
                raise FauveError("Give either a style or a mix, not both.", "Drop one of them.", code="bad_option")
            weights = _parse_weights(mix, names, self.style_index)
            cond.description = "mix " + ", ".join(f"{names[i]}={float(w):.2f}" for i, w in enumerate(weights) if w > 0)
        else:
            index = self.style_index(style) if style is not None else 0
            weights = torch.zeros(len(names))
            weights[index] = 1.0
            cond.description = names[index]
        if model.multi_style:
            cond.style_weights = weights
        cond.content_scale = 1.0 / style_scale
        return cond

    def _image_index(self, key: Any, count: int) -> int:
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise FauveError(f"With style images, mix keys are their positions (0..{count - 1}), not {key!r}.", "Use e.g. 0=0.7,1=0.3.", code="bad_option") from None
        if not 0 <= index < count:
            raise FauveError(f"Mix key {index} is out of range for {count} style images.", f"Use 0..{count - 1}.", code="bad_option")
        return index

    def _style_tensor(self, rgb: np.ndarray, scale: float) -> torch.Tensor:
        """The style image resized so its long side is ``STYLE_BASE_SIZE × scale`` (stroke size)."""
        recipe = self.model.training_recipe or {}
        base = int(recipe.get("style_size") or STYLE_BASE_SIZE)
        h, w = rgb.shape[:2]
        factor = base * scale / max(h, w)
        size = (max(MIN_SIDE, round(h * factor)), max(MIN_SIDE, round(w * factor)))
        return _resize(_to_tensor(rgb), size)

    @staticmethod
    def _region_masks(mask: Any, count: int, image_size: tuple[int, int] | None) -> torch.Tensor:
        m = np.asarray(mask)
        m = to_float01(m) if m.dtype != np.float32 else np.clip(m, 0, 1)
        if m.ndim == 2:
            if count != 2:
                raise FauveError(f"One H×W mask splits the image between 2 styles, but {count} style images were given.",
                                 f"Give a {count}×H×W mask stack.", code="bad_option")
            m = np.stack([m, 1.0 - m])
        if m.ndim != 3 or m.shape[0] != count or (image_size and tuple(m.shape[1:]) != tuple(image_size)):
            raise FauveError(f"Mask shape {m.shape} does not fit {count} styles on a {image_size} image.", "Give a K×H×W stack (or one H×W mask for 2 styles).", code="bad_option")
        return torch.from_numpy(np.ascontiguousarray(m)).float()

    # -- running the network --------------------------------------------------------------------
    @contextlib.contextmanager
    def _autocast(self):
        if self.autocast_dtype is None:
            yield
        else:
            with torch.autocast(self.device.type, dtype=self.autocast_dtype):
                yield

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def _forward(self, x: torch.Tensor, cond: Conditioning, masks: torch.Tensor | None,
                 content_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
                 norm_stats: dict | None = None, backend: str | None = None) -> torch.Tensor:
        """One network pass on device tensors. ``content_stats`` (AdaIN, tiling): frozen mean/std at the
        AdaIN layer, used in place of the tile's own; ``norm_stats``: the frozen instance-norm statistics
        (tiling; the torch backend gets them from SharedNormStats, onnxruntime as graph inputs)."""
        if self._onnx is not None and (backend or self.backend) == "onnxruntime" and masks is None:
            return self._onnx(x, cond, content_stats, norm_stats)
        model = self.model
        with self._autocast():
            if model.method == "adain":
                weights = None if cond.style_weights is None else cond.style_weights.to(x.device)
                y = model(x, style_weights=weights, style_stats=cond.style_stats, alpha=cond.alpha, masks=masks, content_stats=content_stats)
            elif model.method == "msgnet":
                y = model(x, style_weights=None if cond.style_weights is None else cond.style_weights.to(x.device), target_gram=cond.target_gram)
            elif model.multi_style:
                y = model(x, style_weights=cond.style_weights.to(x.device))
            else:
                y = model(x)
        return y.float()

    def _stylize_tensor(self, x: torch.Tensor, cond: Conditioning, tile: int | None, overlap: int, context: int | None,
                        progress: Callable[[float], None] | None, cancel: Any, inplace: bool = False) -> torch.Tensor:
        """(1, 3, H, W) CPU float → stylized (1, 3, H, W) CPU float in [0, 1]. ``inplace``: tiled
        output may overwrite ``x`` (the caller does not need the input afterwards)."""
        b = self.model.border_margin
        h, w = x.shape[-2:]
        padding = margin_padding(h, w, self.model.size_multiple, b)
        reflectable = max(padding) < min(h, w)
        # Untiled: no tiles asked for, or the image fits the memory the tiled path would use
        # anyway for its statistics pass, so one exact pass is the better use of it.
        untiled = tile is None or (h + padding[2] + padding[3]) * (w + padding[0] + padding[1]) <= self._stats_budget(tile)
        backend = None
        if untiled and cond.masks is None and self._onnx is not None and self._onnx.pads_itself:
            if reflectable:  # the whole-image ONNX graph mirrors the same margin itself (fauve.export)
                _check_cancel(cancel)
                return self._forward(self._prepare(x), cond, None).cpu().clamp_(0.0, 1.0)
            backend = "torch"  # too small for the graph's reflection padding
        if any(padding):
            # Reflection needs the picture larger than the pad; a tiny one is extended by replication instead.
            x = F.pad(x, padding, mode="reflect" if reflectable else "replicate")
            inplace = True  # a padded copy: nobody else reads it
        masks = cond.masks
        if masks is not None:
            masks = F.pad(masks[None], padding, mode="replicate")[0]
        if untiled:
            _check_cancel(cancel)
            out = self._forward(self._prepare(x), cond, None if masks is None else masks.to(self.device), backend=backend).cpu()
        else:
            out = self._tiled(x, cond, masks, tile, overlap, context, progress, cancel, inplace)
        return out[..., b:b + h, b:b + w].clamp_(0.0, 1.0)

    def _tiled(self, x: torch.Tensor, cond: Conditioning, masks: torch.Tensor | None, tile: int, overlap: int,
               context: int | None, progress: Callable[[float], None] | None, cancel: Any, inplace: bool = False) -> torch.Tensor:
        m = self.model.size_multiple
        if tile < MIN_TILE:
            raise FauveError(f"Tile size {tile} is too small.", f"Use --tile {MIN_TILE} or more (512 suits most GPUs).", code="bad_option")
        tile = tile // m * m
        context = DEFAULT_CONTEXT if context is None else context
        overlap, context = _round_up(overlap, 1), _round_up(context, m)
        if 2 * context + overlap > tile // 2:  # keep at least half of each tile for output
            context, overlap = _round_up(tile // 8, m), _round_up(tile // 8, 1)
        step = max(m, (tile - 2 * context - overlap) // m * m)
        _, _, h, w = x.shape
        ys, xs = _positions(h, tile, step), _positions(w, tile, step)
        windows = [(y0, x0) for y0 in ys for x0 in xs]
        total = len(windows) + 1
        # Each window's weight is ramp_y ⊗ ramp_x on a grid of windows, so the summed weight is
        # (Σ ramp_y) ⊗ (Σ ramp_x): two vectors instead of an H×W image (memory: bench --large).
        weight_y, weight_x = torch.zeros(h), torch.zeros(w)
        for y0 in ys:
            weight_y[y0:y0 + min(tile, h)] += _ramp(min(tile, h), y0 == 0, y0 + min(tile, h) == h, context, overlap)
        for x0 in xs:
            weight_x[x0:x0 + min(tile, w)] += _ramp(min(tile, w), x0 == 0, x0 + min(tile, w) == w, context, overlap)
        partition = _Partition(ys, xs, min(tile, h), min(tile, w), h, w, context, overlap, weight_y, weight_x)
        stats = self._calibrate(x, cond, partition, self._stats_budget(tile), cancel)
        if progress:
            progress(1 / total)
        shared = SharedNormStats(self.model)
        shared.stats, shared.mode = stats["norm"], "frozen"
        if not self.share_stats:
            shared.layers, stats = [], {"norm": None}
        # Memory: windows run band by band (one row of windows); rows above the next band's start
        # are final, so they are normalised and written out, and the band's accumulator (window
        # height × image width) rolls down. The output goes into ``x`` itself when ``inplace``
        # (later windows read only rows at or below their band's start), else into a new image.
        th, tw = min(tile, h), min(tile, w)
        target = x[0] if inplace else torch.empty(3, h, w)
        band = torch.zeros(3, th, w)
        n = 1
        with shared:
            for i, y0 in enumerate(ys):
                ramp_y = _ramp(th, y0 == 0, y0 + th == h, context, overlap)
                for x0 in xs:
                    _check_cancel(cancel)
                    n += 1
                    crop = x[..., y0:y0 + th, x0:x0 + tw]
                    crop_masks = None if masks is None else masks[:, y0:y0 + th, x0:x0 + tw].to(self.device)
                    out = self._guarded(lambda: self._forward(self._prepare(crop), cond, crop_masks, stats.get("adain"), stats["norm"]))[0].cpu()
                    ramp = ramp_y[:, None] * _ramp(tw, x0 == 0, x0 + tw == w, context, overlap)[None, :]
                    band[:, :, x0:x0 + tw] += out * ramp
                    if progress:
                        progress(n / total)
                done = (ys[i + 1] if i + 1 < len(ys) else h) - y0
                final = band[:, :done].div_(weight_y[y0:y0 + done].clamp_min(1e-8).view(1, done, 1))
                target[:, y0:y0 + done] = final.div_(weight_x.clamp_min(1e-8).view(1, 1, w))
                band = torch.cat([band[:, done:], torch.zeros(3, done, w)], dim=1)
        return target[None]

    def _stats_budget(self, tile: int) -> int:
        return int(self.stats_pixels or STATS_TILES * tile * tile)

    def _calibrate(self, x: torch.Tensor, cond: Conditioning, partition: "_Partition", budget: int, cancel: Any) -> dict[str, Any]:
        """The normalisation statistics every tile shares.

        - AdaIN: the content's mean and std at the AdaIN layer, exact: the encoder runs over the same windows
          and accumulates Σw·f and Σw·f² with the blending weights (which sum to one per pixel).
        - Instance-norm models: each norm layer's statistics depend on the layers before it, so they
          are recorded in one pass over the whole image, downscaled to ``budget`` pixels.
        """
        _check_cancel(cancel)
        result: dict[str, Any] = {"norm": {}}
        if self.method == "adain":
            sums = torch.zeros(3, self.model.style_means.shape[1], dtype=torch.float64)
            for y0, x0, weight in partition.windows():
                _check_cancel(cancel)
                crop = x[..., y0:y0 + partition.th, x0:x0 + partition.tw]
                with self._autocast():
                    feats = self._guarded(lambda: self.model.encode(self._prepare(crop))[self.model.layer].float())
                k = partition.th // feats.shape[-2]
                wf = F.avg_pool2d(weight[None, None], k).to(feats.device) if k > 1 else weight[None, None].to(feats.device)
                sums[0] += (feats * wf).sum(dim=(0, 2, 3)).double().cpu()
                sums[1] += (feats * feats * wf).sum(dim=(0, 2, 3)).double().cpu()
                sums[2] += float(wf.sum())
            mean = sums[0] / sums[2]
            var = (sums[1] / sums[2] - mean * mean).clamp_min(0.0)
            result["adain"] = (mean.float().to(self.device), (var + EPS).sqrt().float().to(self.device))
            return result
        shared = SharedNormStats(self.model)
        if shared.layers:  # BatchNorm models (johnson) normalise with stored running statistics
            _, _, h, w = x.shape
            scale = min(1.0, math.sqrt(budget / (h * w)))
            m = self.model.size_multiple
            size = (max(m * 2, round(h * scale / m) * m), max(m * 2, round(w * scale / m) * m))
            small = _resize(x, size) if size != (h, w) else x
            with shared:
                self._guarded(lambda: self._forward(self._prepare(small), cond, None, backend="torch"))
                if self.exact_stats:
                    self._exact_norm_stats(shared, x, cond, partition, cancel)
        result["norm"] = shared.stats
        return result

    def _exact_norm_stats(self, shared: SharedNormStats, x: torch.Tensor, cond: Conditioning,
                          partition: "_Partition", cancel: Any) -> None:
        """Replace the low-resolution statistics by exact full-resolution ones, layer after layer
        (each layer's statistics depend on the ones before it): for every norm layer, run each
        window up to that layer with the exact statistics found so far and accumulate its weighted
        sums. Costs about (number of norm layers / 2) extra passes over the image."""
        shared.mode = "accumulate"
        try:
            for key in list(shared.order):
                shared.target, shared.sums = key, []
                for y0, x0, weight in partition.windows():
                    _check_cancel(cancel)
                    crop = x[..., y0:y0 + partition.th, x0:x0 + partition.tw]
                    shared.weight = weight[None, None]
                    try:
                        self._guarded(lambda: self._forward(self._prepare(crop), cond, None, backend="torch"))
                    except StopForward:
                        pass
                s1, s2, n = shared.sums
                mean = s1 / n
                var = (s2 / n - mean * mean).clamp_min(0.0)
                old_mean = shared.stats[key][0]
                shared.stats[key] = (mean.float().to(old_mean.device), var.float().to(old_mean.device))
        finally:
            shared.mode, shared.target, shared.weight, shared.sums = "record", None, None, []

    def _guarded(self, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        try:
            return fn()
        except Exception as err:
            if _is_oom(err):
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                raise OutOfMemory(f"Out of memory on {self.device} while stylizing.",
                                  "Use tiling (--tile 512, or smaller: 256), a smaller image, or fp16 (--precision fp16) on a GPU.") from err
            raise

    # -- the public entry point -----------------------------------------------------------------
    def run(self, image: Any, *, style: str | int | None = None, mix: Mapping[Any, float] | None = None,
            style_image: Any = None, strength: float = 1.0, preserve_color: str = "none", style_scale: float = 1.0,
            mask: Any = None, tile: int | None = None, overlap: int = DEFAULT_OVERLAP, context: int | None = None,
            progress: Callable[[float], None] | None = None, cancel: Any = None) -> Any:
        """Stylize ``image`` and return the same kind of object at the same size, alpha unchanged.

        - ``style``: a style name (close names are suggested on a miss) or index; default the first.
        - ``mix``: {name: weight} over the named styles of a multi-style model (normalised to sum 1);
          with several style images, {position: weight}.
        - ``style_image``: one image (path, array, PIL) or a list, for msgnet/adain. msgnet averages
          the Gram matrices (weighted by ``mix``); adain interpolates the statistics, or with a
          K×H×W ``mask`` (or one H×W mask for 2 images) gives each region its own style.
        - ``strength`` in [0, 1]: 0 returns the input; adain uses it as the α trade-off in feature
          space, every other method blends the output with the input.
        - ``preserve_color``: none | luminance | histogram (see ``fauve.color``).
        - ``style_scale``: stroke size. With style images the style image is resized to
          ``512 × scale`` on its long side before its Gram matrix (msgnet) or statistics (adain)
          are computed. With a *named* style (stored Gram or statistics, or a single-style network)
          there is no style image to resize, so the content is resized by ``1 / scale`` instead,
          stylized, and resized back: the strokes grow relative to the picture in the same way.
        - ``mask``: H×W soft mask in [0, 1]: output = mask·stylized + (1 − mask)·input.
        - ``tile``: window size in pixels for tiled inference (None: whole image); ``overlap``:
          width of the feathering ramps; ``context``: pixels computed and discarded on inner sides.
        - ``progress(fraction)`` is called as tiles finish; ``cancel.is_set()`` is checked between
          tiles and raises :class:`~fauve.errors.Cancelled`.
        Gray 2-D arrays come back as H×W×3 (the result has colour).
        """
        rgb, _alpha, kind = _as_float(image)
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_SIDE:
            raise InputImageError(f"The image is {w}×{h} pixels; the smallest side must be at least {MIN_SIDE} px.", f"Use a larger image (at least {MIN_SIDE} px on each side).")
        if preserve_color not in color.MODES:
            raise FauveError(f"Unknown colour-preservation mode {preserve_color!r}.", f"Use one of {', '.join(color.MODES)}.", code="bad_option")
        blend_mask = None
        if mask is not None:
            blend_mask = _mask_array(mask)
            if blend_mask.ndim == 2 and blend_mask.shape != (h, w):
                raise FauveError(f"The mask is {blend_mask.shape[1]}×{blend_mask.shape[0]} but the image is {w}×{h}.", "Give a mask the size of the image.", code="bad_option")
        _check_cancel(cancel)
        if strength == 0:
            if progress:
                progress(1.0)
            return _back(rgb, kind) if kind.pil or kind.gray2d else np.array(image, copy=True)
        with self._lock, torch.inference_mode():
            torch.manual_seed(self.seed)
            cond = self.condition(style=style, mix=mix, style_image=style_image, strength=strength, style_scale=style_scale,
                                  mask=blend_mask, image_size=(h, w))
            work = rgb
            if cond.content_scale != 1.0:
                size = (max(MIN_SIDE, round(h * cond.content_scale)), max(MIN_SIDE, round(w * cond.content_scale)))
                work = _resize_np(rgb, size)
            x = torch.from_numpy(work).permute(2, 0, 1)[None]  # a view: tiles are copied out one at a time
            # Tiled output may overwrite the float input when nothing below reads it again.
            inplace = work is not rgb or (preserve_color in (None, "none") and blend_mask is None
                                          and (strength >= 1.0 or self.method == "adain"))
            out = self._guarded(lambda: self._stylize_tensor(x, cond, tile, overlap, context, progress, cancel, inplace))
            out_rgb = out[0].permute(1, 2, 0).numpy()
            if out_rgb.shape[:2] != (h, w):
                out_rgb = _resize_np(out_rgb, (h, w))
        if progress:
            progress(1.0)
        out_rgb = color.preserve_color(rgb, out_rgb, preserve_color)
        if self.method != "adain" and strength < 1.0:
            out_rgb = strength * out_rgb + (1.0 - strength) * rgb
        if blend_mask is not None and cond.masks is None:
            if blend_mask.ndim != 2:
                raise FauveError("A mask stack (K×H×W) needs K style images on an adain model.", "Give one H×W mask to blend with the input.", code="bad_option")
            out_rgb = blend_mask[:, :, None] * out_rgb + (1.0 - blend_mask[:, :, None]) * rgb
        out_rgb = np.clip(out_rgb, 0.0, 1.0, out=out_rgb)  # out_rgb is this run's own buffer
        del rgb, work, x  # the float input is not needed any more: free it before the conversion back
        return _back(out_rgb, kind)

    def stylize_file(self, path: Any, **options: Any) -> tuple[np.ndarray, np.ndarray | None, int]:
        """Read an image file, stylize it; returns (rgb float, alpha or None, source bit depth)."""
        data = read_image(path)
        return self.run(data.rgb, **options), data.alpha, data.bits


def _mask_array(mask: Any) -> np.ndarray:
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L"))
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] in (1, 3, 4) and m.shape[0] > 4:
        m = m[:, :, 0]
    return to_float01(m) if m.dtype != np.float32 else np.clip(np.nan_to_num(m), 0.0, 1.0)


@dataclass
class _Partition:
    """The tiling of an image: window starts, window size and each window's share of every pixel."""

    ys: list[int]
    xs: list[int]
    th: int
    tw: int
    h: int
    w: int
    context: int
    overlap: int
    weight_y: torch.Tensor  # Σ ramps along y
    weight_x: torch.Tensor

    def windows(self):
        """(y0, x0, weight) with weights that sum to exactly one at every pixel."""
        for y0 in self.ys:
            ry = _ramp(self.th, y0 == 0, y0 + self.th == self.h, self.context, self.overlap) / self.weight_y[y0:y0 + self.th].clamp_min(1e-8)
            for x0 in self.xs:
                rx = _ramp(self.tw, x0 == 0, x0 + self.tw == self.w, self.context, self.overlap) / self.weight_x[x0:x0 + self.tw].clamp_min(1e-8)
                yield y0, x0, ry[:, None] * rx[None, :]


def margin_padding(h: Any, w: Any, multiple: int, margin: int) -> tuple[Any, Any, Any, Any]:
    """F.pad's (left, right, top, bottom) around an h × w picture: ``margin`` on every side, and the right and
    bottom rounded up to a multiple of ``multiple``. Also traced into the ONNX graph (h, w symbolic there)."""
    pad_h, pad_w = (multiple - (h + 2 * margin) % multiple) % multiple, (multiple - (w + 2 * margin) % multiple) % multiple
    return margin, margin + pad_w, margin, margin + pad_h


def _check_cancel(cancel: Any) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("The job was cancelled.")


def _round_up(value: int, multiple: int) -> int:
    return max(0, -(-int(value) // multiple) * multiple)


def _positions(length: int, tile: int, step: int) -> list[int]:
    """Window starts along one axis: 0, step, 2·step, … and a last window flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(length: int, at_start: bool, at_end: bool, context: int, overlap: int) -> torch.Tensor:
    """Blending weight along one axis of a window: 0 over the discarded context, a linear ramp
    over ``overlap`` pixels, 1 inside; no ramp on sides that touch the image border."""
    ramp = torch.ones(length)
    idx = torch.arange(length, dtype=torch.float32)
    if not at_start:
        ramp = torch.minimum(ramp, ((idx - context + 1) / (overlap + 1)).clamp(0, 1))
    if not at_end:
        ramp = torch.minimum(ramp, ((length - context - idx) / (overlap + 1)).clamp(0, 1))
    return ramp
