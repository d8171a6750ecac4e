"""Building blocks shared by the five architectures.

Every norm layer takes ``(x, style_weights)`` so one generator body serves BatchNorm (Johnson),
InstanceNorm (Ulyanov) and conditional InstanceNorm (Dumoulin); the plain norms ignore the weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-5


def channels(base: int, width: float) -> int:
    """Width multiplier (magenta's alpha): scale a channel count, never below 4."""
    return max(4, int(round(base * width)))


class ConvLayer(nn.Module):
    """Reflection padding + conv, so borders carry no zero-padding artefacts."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class UpsampleConv(nn.Module):
    """Resize ×``factor`` then conv: the fix for checkerboard artefacts (Odena et al. 2016).

    ``mode="nearest"`` copies each feature into a 2×2 block, and a conv over blocks still sees where
    in its block a pixel lies, which a network can turn into a 2 or 4 px pattern when a style rewards
    fine texture; ``"bilinear"`` interpolates, so the upsampled map has no blocks to lock onto
    (session 7, docs/training.md). Both have the same weights, so one can be fine-tuned into the other."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, factor: int = 2, mode: str = "nearest") -> None:
        super().__init__()
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"unknown resize mode {mode!r}; use nearest or bilinear")
        self.factor, self.mode = factor, mode
        self.conv = ConvLayer(in_ch, out_ch, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.factor != 1:
            corners = {"align_corners": False} if self.mode == "bilinear" else {}
            x = F.interpolate(x, scale_factor=self.factor, mode=self.mode, **corners)
        return self.conv(x)


class TransposedConv(nn.Module):
    """Fractionally-strided conv ×2, as in Johnson et al.'s paper (prone to checkerboard patterns)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_ch, out_ch, kernel, stride=2, padding=kernel // 2, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class BatchNorm(nn.BatchNorm2d):
    def forward(self, x: torch.Tensor, style_weights: torch.Tensor | None = None) -> torch.Tensor:  # noqa: ARG002
        return super().forward(x)


class InstanceNorm(nn.InstanceNorm2d):
    """Instance normalisation (Ulyanov et al. 2016), the same statistics at train and test time:

    y = γ · (x − μ_{n,c}) / σ_{n,c} + β, with μ, σ over H×W of each sample and channel.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, eps=EPS, affine=True, track_running_stats=False)

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor | None = None) -> torch.Tensor:  # noqa: ARG002
        return super().forward(x)


class ConditionalInstanceNorm(nn.Module):
    """Conditional instance normalisation (Dumoulin et al. 2016).

    γ, β ∈ R^{N×C} hold one row per style. For style weights w ∈ R^{B×N} (one-hot picks a style,
    a convex combination mixes them): y = (w·γ) · IN(x) + (w·β), linear in w.
    """

    def __init__(self, num_features: int, num_styles: int) -> None:
        super().__init__()
        self.num_styles = num_styles
        self.gamma = nn.Parameter(torch.ones(num_styles, num_features))
        self.beta = nn.Parameter(torch.zeros(num_styles, num_features))

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor | None = None) -> torch.Tensor:
        if style_weights is None:
            raise ValueError("conditional instance norm needs style weights of shape (batch, num_styles)")
        normalized = F.instance_norm(x, eps=EPS)
        w = style_weights.to(dtype=self.gamma.dtype)
        gamma = (w @ self.gamma)[:, :, None, None]
        beta = (w @ self.beta)[:, :, None, None]
        return normalized * gamma.to(x.dtype) + beta.to(x.dtype)


def make_norm(kind: str, num_features: int, num_styles: int = 1) -> nn.Module:
    if kind == "batch":
        return BatchNorm(num_features)
    if kind == "instance":
        return InstanceNorm(num_features)
    if kind == "conditional":
        return ConditionalInstanceNorm(num_features, num_styles)
    raise ValueError(f"unknown norm {kind!r}; use batch, instance or conditional")


def mean_std(features: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and standard deviation over H×W, shaped (B, C, 1, 1)."""
    b, c = features.shape[:2]
    flat = features.reshape(b, c, -1)
    mean = flat.mean(dim=2)
    std = (flat.var(dim=2, unbiased=False) + eps).sqrt()
    return mean.view(b, c, 1, 1), std.view(b, c, 1, 1)


def adain(content: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor,
          content_stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Adaptive instance normalisation (Huang & Belongie 2017):

    AdaIN(x, y) = σ(y) · (x − μ(x)) / σ(x) + μ(y)

    ``content_stats``: μ(x), σ(x) given instead of measured (tiling: the whole image's statistics).
    """
    mean, std = mean_std(content) if content_stats is None else content_stats
    return style_std * (content - mean) / std + style_mean


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """G = F Fᵀ / (C·H·W) for features F of shape (B, C, H·W).

    Always in float32, also under autocast: a bf16 Gram sums H·W products of 8-bit-mantissa values,
    and the style loss compares Grams to a few parts in a thousand late in training.
    """
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w).float()
    with torch.autocast(flat.device.type, enabled=False):
        return flat @ flat.transpose(1, 2) / (c * h * w)


class CoMatch(nn.Module):
    """MSG-Net's CoMatch layer (Zhang & Dana 2017), the "Inspiration" layer in their code.

    Y = reshape((W · G_s)ᵀ · X̃), with X̃ the content features flattened to (C, H·W), G_s the Gram
    matrix of the style's features from the same (siamese) encoder and W ∈ R^{C×C} learned.

    W starts at the identity plus U(0, 0.02) noise. The reference's U(0, 0.02) alone makes every row
    of W · G_s nearly the same (a positive W is close to rank one), so each output channel is one
    content map scaled per style, a scale the next instance norm removes: in a 1600-step CPU run the
    16 styles' outputs differed by 0.004 (mean |Δ|) while moving 0.13 away from the photo. With
    W = I the style's Gram mixes the content channels from the first step.
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        start = torch.eye(num_channels) + torch.empty(num_channels, num_channels).uniform_(0.0, 0.02)
        self.weight = nn.Parameter(start.unsqueeze(0))

    def forward(self, x: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        gram = target_gram.to(x.dtype).expand(b, c, c)
        p = self.weight.to(x.dtype).expand(b, c, c) @ gram
        return (p.transpose(1, 2) @ x.reshape(b, c, h * w)).reshape(b, c, h, w)
