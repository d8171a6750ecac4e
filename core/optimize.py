"""Image optimisation on VGG16 features: the quality reference and the reconstruction figures.

- :func:`stylize` — Gatys, Ecker & Bethge 2016, "Image Style Transfer Using Convolutional Neural
  Networks" (CVPR): find the image x that minimises
  ``w_c·L_content(x, c) + w_s·L_style(x, s) + w_tv·TV(x)`` by L-BFGS (default) or Adam on the pixels.
- :func:`reconstruct` — the feature- and style-reconstruction experiment of Johnson, Alahi &
  Fei-Fei 2016 (Fig. 3, after Mahendran & Vedaldi 2015): start from noise and match *only* the
  relu features of one layer (``feature``), or *only* their Gram matrices (``style``).

Losses are normalised per layer (see /work/shared/research/training-notes.md and
``fauve.losses``): the content term is ‖φ(x) − φ(c)‖² / ‖φ(c)‖² (divided by the target's mean
square), and each style layer's Gram loss is further divided by its own value at the start, so
every layer begins at 1 — raw Gram losses differ by ~10⁸ between relu1_2 and relu4_3, and an
L-BFGS run with raw weights does nothing at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fauve.errors import Cancelled, FauveError
from fauve.losses import relative_mse, total_variation
from fauve.models.layers import gram_matrix
from fauve.vgg import TAP_INDEX, VGG16Features

CONTENT_LAYERS = ("relu3_3",)
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
OPTIMIZERS = ("lbfgs", "adam")


@dataclass
class OptimizeResult:
    """``image``: (H, W, 3) float32 in [0, 1]; ``losses``: total loss at the start and after each
    chunk of iterations;
    ``layer_losses``: the last per-layer (normalised) losses; ``vgg``: the loss network used."""

    image: np.ndarray
    losses: list[float] = field(default_factory=list)
    layer_losses: dict[str, float] = field(default_factory=dict)
    vgg: dict[str, str] = field(default_factory=dict)
    iterations: int = 0


def _to_tensor(rgb: np.ndarray, long_side: int | None, device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float()
    if long_side:
        h, w = x.shape[-2:]
        scale = long_side / max(h, w)
        size = (max(16, round(h * scale)), max(16, round(w * scale)))
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    return x.to(device)


def _check_layers(layers: Sequence[str]) -> tuple[str, ...]:
    unknown = [name for name in layers if name not in TAP_INDEX]
    if unknown or not layers:
        raise FauveError(f"Unknown VGG16 layer(s) {', '.join(unknown) or '(none)'}.", f"Use relu layers: {', '.join(TAP_INDEX)}.", code="bad_option")
    return tuple(layers)


def _run(objective: Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, float]]], x: torch.Tensor, *, iters: int,
         optimizer: str, lr: float | None, progress: Callable[[float], None] | None, cancel: Any,
         chunk: int = 10) -> tuple[list[float], dict[str, float], int]:
    """Minimise ``objective`` over the pixels ``x`` (kept in [0, 1] between chunks of iterations)."""
    if optimizer not in OPTIMIZERS:
        raise FauveError(f"Unknown optimizer {optimizer!r}.", f"Use one of {', '.join(OPTIMIZERS)}.", code="bad_option")
    x.requires_grad_(True)
    history: list[float] = []
    last: dict[str, float] = {}
    def make_optimizer() -> torch.optim.Optimizer:
        if optimizer == "lbfgs":
            return torch.optim.LBFGS([x], lr=lr or 1.0, max_iter=chunk, history_size=50,
                                     line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)
        return torch.optim.Adam([x], lr=lr or 0.02)

    opt = make_optimizer()
    retried = False

    def closure() -> torch.Tensor:
        nonlocal last
        opt.zero_grad()
        loss, parts = objective(x)
        loss.backward()
        last = parts
        return loss

    def evaluate() -> float:
        with torch.no_grad():
            return float(objective(x)[0])

    done = 0
    history.append(evaluate())
    while done < iters:
        if cancel is not None and cancel.is_set():
            raise Cancelled("The optimisation was cancelled.")
        steps = min(chunk, iters - done)
        snapshot = x.detach().clone()
        if optimizer == "lbfgs":
            opt.param_groups[0]["max_iter"] = steps
            opt.param_groups[0]["max_eval"] = steps * 5 // 4 + 1
            opt.step(closure)
        else:
            for _ in range(steps):
                opt.step(closure)
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
        loss = evaluate()
        if not math.isfinite(loss):
            # L-BFGS's curvature history can send one line search to inf/NaN (seen on a GPU with TF32
            # convolutions): go back to the last finite image and rebuild the optimizer, once.
            if optimizer != "lbfgs" or retried:
                hint = "Lower --style-weight, or start from --init content." if optimizer == "lbfgs" else "Lower --lr or use --optimizer lbfgs."
                raise FauveError("The optimisation diverged (the loss is not finite).", hint, code="diverged")
            with torch.no_grad():
                x.copy_(snapshot)
            opt, retried = make_optimizer(), True
            continue
        done += steps
        history.append(loss)
        if progress:
            progress(done / iters)
    return history, last, done


def stylize(content: np.ndarray, style: np.ndarray, *, size: int | None = 256, style_size: int | None = None,
            iters: int = 200, optimizer: str = "lbfgs", lr: float | None = None, content_weight: float = 1.0,
            style_weight: float = 10.0, tv_weight: float = 0.0, content_layers: Sequence[str] = CONTENT_LAYERS,
            style_layers: Sequence[str] = STYLE_LAYERS, init: str = "content", vgg_source: str = "auto",
            device: str | torch.device = "auto", seed: int = 0, progress: Callable[[float], None] | None = None,
            cancel: Any = None, vgg: VGG16Features | None = None) -> OptimizeResult:
    """Gatys et al. style transfer of ``content`` (H×W×3 float in [0, 1]) toward ``style``.

    ``size``: long side of the result (None: the content's own size); ``style_size``: long side of
    the style image (default: ``size``). ``init``: ``content`` (default) or ``noise``.
    """
    from fauve.pipeline import resolve_device

    dev = resolve_device(device)
    content_layers, style_layers = _check_layers(content_layers), _check_layers(style_layers)
    net = vgg or VGG16Features(taps=tuple(dict.fromkeys(content_layers + style_layers)), source=vgg_source)
    net = net.to(dev)
    torch.manual_seed(seed)
    c = _to_tensor(content, size, dev)
    s = _to_tensor(style, style_size or size or max(content.shape[:2]), dev)
    with torch.no_grad():
        c_feats = net(c, content_layers)
        s_grams = {name: gram_matrix(f) for name, f in net(s, style_layers).items()}
    x = _initial(c, init)
    with torch.no_grad():  # each style layer's loss at the start, its normaliser
        start = net(x, style_layers)
        norms = {name: float(relative_mse(gram_matrix(start[name]), s_grams[name])) or 1.0 for name in style_layers}

    def objective(img: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        feats = net(img, tuple(dict.fromkeys(content_layers + style_layers)))
        parts = {f"content:{n}": relative_mse(feats[n], c_feats[n]) for n in content_layers}
        parts |= {f"style:{n}": relative_mse(gram_matrix(feats[n]), s_grams[n]) / norms[n] for n in style_layers}
        content_term = sum(parts[f"content:{n}"] for n in content_layers) / len(content_layers)
        style_term = sum(parts[f"style:{n}"] for n in style_layers) / len(style_layers)
        loss = content_weight * content_term + style_weight * style_term
        if tv_weight:
            loss = loss + tv_weight * total_variation(img)
        return loss, {k: float(v.detach()) for k, v in parts.items()}

    history, last, done = _run(objective, x, iters=iters, optimizer=optimizer, lr=lr, progress=progress, cancel=cancel)
    return OptimizeResult(_to_numpy(x), history, last, net.source_info(), done)


def reconstruct(target: np.ndarray, *, kind: str = "feature", layers: Sequence[str] = ("relu3_3",), size: int | None = 256,
                iters: int = 200, optimizer: str = "lbfgs", lr: float | None = None, vgg_source: str = "auto",
                device: str | torch.device = "auto", seed: int = 0, progress: Callable[[float], None] | None = None,
                cancel: Any = None, vgg: VGG16Features | None = None) -> OptimizeResult:
    """Johnson et al.'s reconstruction from one layer: start from noise and match only the relu
    features (``kind="feature"``: what the layer keeps of the image — colour and fine detail go
    first in deeper layers) or only their Gram matrices (``kind="style"``: texture without layout,
    larger structures from deeper layers)."""
    from fauve.pipeline import resolve_device

    if kind not in ("feature", "style"):
        raise FauveError(f"Unknown reconstruction {kind!r}.", "Use feature or style.", code="bad_option")
    dev = resolve_device(device)
    layers = _check_layers(layers)
    net = (vgg or VGG16Features(taps=layers, source=vgg_source)).to(dev)
    torch.manual_seed(seed)
    t = _to_tensor(target, size, dev)
    with torch.no_grad():
        feats = net(t, layers)
        goal = feats if kind == "feature" else {n: gram_matrix(f) for n, f in feats.items()}
    x = _initial(t, "noise")

    def objective(img: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        out = net(img, layers)
        parts = {n: relative_mse(out[n] if kind == "feature" else gram_matrix(out[n]), goal[n]) for n in layers}
        return sum(parts.values()) / len(layers), {k: float(v.detach()) for k, v in parts.items()}

    history, last, done = _run(objective, x, iters=iters, optimizer=optimizer, lr=lr, progress=progress, cancel=cancel)
    return OptimizeResult(_to_numpy(x), history, last, net.source_info(), done)


def _initial(like: torch.Tensor, init: str) -> torch.Tensor:
    if init == "content":
        return like.detach().clone()
    if init == "noise":
        return (0.5 + 0.1 * torch.randn(like.shape, device=like.device)).clamp(0, 1)
    raise FauveError(f"Unknown init {init!r}.", "Use content or noise.", code="bad_option")


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)
