"""Zhang & Dana 2017, "Multi-style Generative Network for Real-time Transfer" (MSG-Net).

A siamese encoder embeds both the content and the style image; the CoMatch layer matches the
content features to the style's Gram matrix (``layers.CoMatch``); bottleneck residual blocks and
upsampled residual blocks (nearest + conv on both the shortcut and the main path, so no
checkerboard) decode. Any style image can be set at inference; its scale controls stroke size.
The Gram matrices of the training styles are stored in the model, so named styles need no images.

``style_stat="covariance"`` (not in the paper) gives CoMatch the covariance of the style's features (the
Gram of the features minus their per-channel means) instead of their Gram: the mean outer product μμᵀ, nearly
the same for every painting, dominates the Gram (docs/training.md, session 16), so with it the paintings'
matrices differ far less than their covariances do.

``upsample="bilinear"`` (not in the paper) resizes bilinearly in the upsampled blocks, as the other
generators may (``layers.UpsampleConv``): the same weights, no 2 px blocks for a fine lattice to lock onto.

``residual_output=True`` (not in the paper) adds the input to the output, ŷ = x + T(x), with the last
conv zero-initialised so training starts at the identity (as for the other generators; it makes short
CPU runs converge far faster).
"""

from __future__ import annotations

import torch
from torch import nn

from fauve.models.base import StyleModel
from fauve.models.layers import CoMatch, ConvLayer, InstanceNorm, UpsampleConv, channels, gram_matrix


STYLE_STATS = ("gram", "covariance")


class Bottleneck(nn.Module):
    """Pre-activation bottleneck residual block (He et al. 2016): IN-ReLU-1×1, IN-ReLU-3×3, IN-ReLU-1×1."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride) if stride != 1 or in_ch != out_ch else nn.Identity()
        self.block = nn.Sequential(
            InstanceNorm(in_ch), nn.ReLU(), nn.Conv2d(in_ch, planes, 1),
            InstanceNorm(planes), nn.ReLU(), ConvLayer(planes, planes, 3, stride),
            InstanceNorm(planes), nn.ReLU(), nn.Conv2d(planes, out_ch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class UpBottleneck(nn.Module):
    """Upsampled residual block: ×2 resize (nearest in the paper) + conv on both the shortcut and the main path."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, mode: str = "nearest") -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.shortcut = UpsampleConv(in_ch, out_ch, 1, factor=2, mode=mode)
        self.block = nn.Sequential(
            InstanceNorm(in_ch), nn.ReLU(), nn.Conv2d(in_ch, planes, 1),
            InstanceNorm(planes), nn.ReLU(), UpsampleConv(planes, planes, 3, factor=2, mode=mode),
            InstanceNorm(planes), nn.ReLU(), nn.Conv2d(planes, out_ch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class MSGNet(StyleModel, method="msgnet"):
    """MSG-Net: siamese encoder + CoMatch + bottleneck decoder; ``width`` scales ngf (128 in the paper)."""

    size_multiple = 4
    multi_style = True
    accepts_style_image = True
    style_buffers = ("style_grams",)
    arch_keys = StyleModel.arch_keys + ("style_stat",)

    def __init__(self, width: float = 1.0, num_blocks: int = 6, num_styles: int = 1, residual_output: bool = False,
                 style_stat: str = "gram", upsample: str = "nearest", **meta) -> None:
        super().__init__(num_styles=num_styles, **meta)
        if style_stat not in STYLE_STATS:
            raise ValueError(f"unknown msgnet style_stat {style_stat!r}; use {' or '.join(STYLE_STATS)}")
        self.width, self.num_blocks, self.residual_output, self.style_stat = width, num_blocks, residual_output, style_stat
        self.upsample = upsample
        ngf = channels(128, width)
        c64, c32, c16 = channels(64, width), channels(32, width), channels(16, width)
        self.feature_channels = ngf * 4
        self.encoder = nn.Sequential(
            ConvLayer(3, c64, 7), InstanceNorm(c64), nn.ReLU(),
            Bottleneck(c64, c32, 2), Bottleneck(c32 * 4, ngf, 2),
        )
        self.comatch = CoMatch(ngf * 4)
        self.decoder = nn.Sequential(
            *[Bottleneck(ngf * 4, ngf) for _ in range(num_blocks)],
            UpBottleneck(ngf * 4, c32, upsample), UpBottleneck(c32 * 4, c16, upsample),
            InstanceNorm(c16 * 4), nn.ReLU(), ConvLayer(c16 * 4, 3, 7),
        )
        if residual_output:  # start exactly at the identity
            nn.init.zeros_(self.decoder[-1].conv.weight)
            nn.init.zeros_(self.decoder[-1].conv.bias)
        # Gram matrices of the training styles, so named styles work without their images.
        self.register_buffer("style_grams", torch.zeros(max(num_styles, 1), ngf * 4, ngf * 4))

    def style_gram(self, style_image: torch.Tensor) -> torch.Tensor:
        """G_s = Gram(F) with F = encoder(style), shape (B, C, C); with ``style_stat="covariance"``
        Gram(F − μ(F)), μ the per-channel spatial mean."""
        features = self.encoder(style_image)
        if self.style_stat == "covariance":
            features = features - features.mean(dim=(2, 3), keepdim=True)
        return gram_matrix(features)

    @torch.no_grad()
    def set_style_grams(self, style_images: list[torch.Tensor]) -> None:
        """Store the Gram matrix of each training style (each a (1, 3, H, W) tensor in [0, 1])."""
        grams = torch.cat([self.style_gram(img.to(self.style_grams.device)) for img in style_images])
        self.style_grams.copy_(grams.to(self.style_grams.dtype))

    def forward(
        self,
        x: torch.Tensor,
        style_weights: torch.Tensor | None = None,
        target_gram: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Stylize ``x`` toward ``target_gram`` (B or 1, C, C) or a weighted mix of the stored styles."""
        if target_gram is None:
            if style_weights is None:
                style_weights = torch.eye(self.num_styles, device=x.device)[0]  # no host copy: CUDA graphs
            w = style_weights.reshape(-1, self.num_styles).to(self.style_grams.dtype)
            target_gram = torch.einsum("bn,ncd->bcd", w, self.style_grams)
        out = self.decoder(self.comatch(self.encoder(x), target_gram))
        return x + out if self.residual_output else out
