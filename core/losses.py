"""Perceptual losses on VGG16 taps (Gatys et al. 2016; Johnson et al. 2016; Huang & Belongie 2017).

Every loss is *normalised by its target's energy*, so one set of weights works with either VGG16
weight source (their activations differ by ~255×) and across layers (raw Gram losses differ by
~10⁸ between relu1_2 and relu4_3):

- content:  ‖φ_j(ŷ) − φ_j(y)‖² / ‖φ_j(y)‖²
- style:    Σ_j ‖G_j(ŷ) − G_j(s)‖² / ‖G_j(s)‖²,   G = F Fᵀ / (C·H·W)
- AdaIN style: Σ_j ‖μ_j(ŷ) − μ_j(s)‖² / ‖μ_j(s)‖² + ‖σ_j(ŷ) − σ_j(s)‖² / ‖σ_j(s)‖²
- total variation: mean |∇ŷ| (anisotropic L1), on pixels in [0, 1]
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fauve.models.layers import gram_matrix, mean_std

_EPS = 1e-8


def relative_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ‖pred − target‖² / ‖target‖² (per sample)."""
    dims = tuple(range(1, target.dim()))
    err = (pred - target).pow(2).sum(dim=dims)
    energy = target.pow(2).sum(dim=dims).clamp_min(_EPS)
    return (err / energy).mean()


def content_loss(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], layers: tuple[str, ...]) -> torch.Tensor:
    return sum(relative_mse(features[name], targets[name]) for name in layers) / len(layers)


def style_grams(features: Mapping[str, torch.Tensor], layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {name: gram_matrix(features[name]) for name in layers}


def gram_style_loss(features: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor], layers: tuple[str, ...]) -> torch.Tensor:
    """Target Grams may have batch 1 (one style for the batch) or the batch's size (one per sample)."""
    total = 0.0
    for name in layers:
        g = gram_matrix(features[name])
        total = total + relative_mse(g, target_grams[name].expand_as(g))
    return total / len(layers)


def mean_std_style_loss(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], layers: tuple[str, ...]) -> torch.Tensor:
    total = 0.0
    for name in layers:
        mean, std = mean_std(features[name])
        t_mean, t_std = mean_std(targets[name])
        total = total + relative_mse(mean, t_mean.expand_as(mean)) + relative_mse(std, t_std.expand_as(std))
    return total / len(layers)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    return dx + dy
