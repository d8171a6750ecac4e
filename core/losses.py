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

from collections.abc import Callable, Mapping

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


DISTILL_LAYERS = ("relu2_2", "relu3_3")


def distillation_loss(output: torch.Tensor, teacher: torch.Tensor, features: Mapping[str, torch.Tensor],
                      teacher_features: Mapping[str, torch.Tensor], layers: tuple[str, ...] = DISTILL_LAYERS) -> torch.Tensor:
    """How far a student generator's pictures are from its teacher's (knowledge distillation, Hinton,
    Vinyals & Dean 2015; for slimmer image generators, Li et al. 2020, "GAN Compression"):

        Σ_l ‖φ_l(o) − φ_l(t)‖² / ‖φ_l(t)‖² / |layers|  +  |o − t|₁ (mean over pixels)

    on the loss network's ``layers`` (a content loss whose target is the teacher's picture: strokes
    and edges must be where the teacher puts them, which a pixel loss alone would blur into their
    average) plus pixel L1 for the colours."""
    return content_loss(features, teacher_features, layers) + (output.float() - teacher.float()).abs().mean()


LATTICE_PERIOD = 8  # its lattice holds the 2 and 4 px lattices' bins too


def _luma_spectrum(image: torch.Tensor) -> torch.Tensor:
    """|FFT|² of the (B, 3, H, W) pictures' Rec. 601 luma, mean removed; float32 whatever the autocast."""
    y = image.float()
    y = y[:, 0] * 0.299 + y[:, 1] * 0.587 + y[:, 2] * 0.114
    return torch.fft.fft2(y - y.mean(dim=(-2, -1), keepdim=True)).abs().pow(2)


def lattice_penalty(output: torch.Tensor, photo: torch.Tensor, period: int = LATTICE_PERIOD) -> torch.Tensor:
    """How far the output's spectral lines on the upsampling lattice stand out, beyond the photo's.

    A pattern that repeats every 2, 4 or 8 px puts its power on the bins (k·H/8, l·W/8) of the
    spectrum; texture and brush strokes spread theirs. Per bin: r = mean power of the 3×3 bins
    around it over the mean power of the 9×9 ring around those (of the output or the photo,
    whichever is higher; held fixed, so the loss cannot fall by adding power around the line).
    Penalty: mean over bins and the batch of relu(r_output − max(1, r_photo) − 1), i.e. zero for a
    picture whose lattice bins are less than twice as strong as their surroundings or the photo's
    (a JPEG photo's own 8 px blocks are not held against the output). The same measure as
    ``fauve.artifacts`` (which scores at eval time), made differentiable; spectral regularisation
    against upsampling artefacts follows Durall, Keuper & Keuper 2020 ("Watch your Up-Convolution").
    """
    h, w = output.shape[-2] // period * period, output.shape[-1] // period * period
    if h < 2 * period or w < 2 * period:
        raise ValueError(f"pictures of {output.shape[-2]}×{output.shape[-1]} px are too small for a {period} px lattice")
    power = _luma_spectrum(output[..., :h, :w])
    with torch.no_grad():
        ref = _luma_spectrum(photo[..., :h, :w])
    dev = power.device
    ky, kx = torch.meshgrid(torch.arange(period, device=dev), torch.arange(period, device=dev), indexing="ij")
    keep = (ky + kx) > 0
    by, bx = (ky[keep] * (h // period)), (kx[keep] * (w // period))  # (N,) lattice bins but DC
    d = torch.arange(-4, 5, device=dev)
    rows = (by[:, None, None] + d[None, :, None]) % h  # (N, 9, 1)
    cols = (bx[:, None, None] + d[None, None, :]) % w  # (N, 1, 9)
    inner = (d.abs() <= 1)[:, None] & (d.abs() <= 1)[None, :]  # the 3×3 around the bin

    def windows(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        patch = p[:, rows, cols]  # (B, N, 9, 9)
        core = patch[..., inner].mean(-1)
        ring = patch[..., ~inner].mean(-1)
        return core, ring

    core, ring = windows(power)
    ref_core, ref_ring = windows(ref)
    level = torch.maximum(ring.detach(), ref_ring).clamp_min(1e-12)
    excess = core / level - torch.clamp(ref_core / level, min=1.0)
    # 3×3 means of broadband texture's power scatter around their ring's by ±⅓; a margin of 1 keeps
    # texture's chance peaks (>2× the ring: under 1 % of bins) from being smoothed away as lines.
    return torch.relu(excess - 1.0).mean()


# The ring and wedge of fauve.artifacts' stripe score (cycles/px; degrees either side of an axis).
STRIPE_RING, STRIPE_WEDGE, STRIPE_BIN = (0.05, 0.45), 8.0, 0.01


def _axis_excess(image: torch.Tensor) -> torch.Tensor:
    """(B, 2) of fauve.artifacts.axis_excess (horizontal, vertical stripes) for (B, 3, H, W) pictures: per
    ring, the mean power within the wedge around the axis over the mean power of the rest of the ring
    (the rest held fixed, so the loss cannot fall by adding power beside the axis); the mean over rings."""
    y = image.float()
    y = y[:, 0] * 0.299 + y[:, 1] * 0.587 + y[:, 2] * 0.114
    h, w = y.shape[-2:]
    dev = y.device
    window = torch.hann_window(h, periodic=False, device=dev)[:, None] * torch.hann_window(w, periodic=False, device=dev)[None, :]
    power = torch.fft.fft2((y - y.mean(dim=(-2, -1), keepdim=True)) * window).abs().pow(2).flatten(1)
    fy, fx = torch.meshgrid(torch.fft.fftfreq(h, device=dev), torch.fft.fftfreq(w, device=dev), indexing="ij")
    radius = torch.hypot(fy, fx).flatten()
    angle = torch.rad2deg(torch.atan2(fx.abs(), fy.abs())).flatten()  # 0° on the vertical-frequency axis
    rings = int(round((STRIPE_RING[1] - STRIPE_RING[0]) / STRIPE_BIN))
    ring = torch.floor((radius - STRIPE_RING[0]) / STRIPE_BIN).long()
    valid = (ring >= 0) & (ring < rings)

    def ring_means(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = ring[mask]
        counts = torch.bincount(idx, minlength=rings).float()
        sums = torch.zeros(power.shape[0], rings, device=dev).index_add(1, idx, power[:, mask])
        return sums / counts.clamp_min(1), counts > 0

    out = []
    for on_axis in (angle < STRIPE_WEDGE, angle > 90 - STRIPE_WEDGE):
        (axis, has_axis), (rest, has_rest) = ring_means(valid & on_axis), ring_means(valid & ~on_axis)
        ratio = axis / rest.detach().clamp_min(1e-20)
        out.append(ratio[:, has_axis & has_rest].mean(dim=1))
    return torch.stack(out, dim=1)


def stripe_penalty(output: torch.Tensor, photo: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """How far the output's spectrum stands out along a frequency axis (fine parallel lines, the
    hatching a slim generator draws over water and sky), beyond the photo's own.

    The differentiable twin of ``fauve.artifacts.StripeMeter`` (the eval score): per picture and axis,
    e = axis_excess(output) / max(1, axis_excess(photo)); penalty = mean of relu(e − ``margin``) over axes and
    the batch: zero unless the output stands out along an axis more than the photo does. The eval's limit is 3,
    but a net that passes on 384² training crops (e ≈ 1.2, as its teacher) can still reach 4–8 on a photo's large
    flat water at 1024 px (docs/training.md, session 14), so the margin is the photo's own level."""
    if min(output.shape[-2:]) < 32:
        raise ValueError(f"pictures of {output.shape[-2]}×{output.shape[-1]} px are too small to measure stripes")
    excess = _axis_excess(output)
    with torch.no_grad():
        ref = _axis_excess(photo).clamp_min(1.0)
    return torch.relu(excess / ref - margin).mean()


def shift_equivariance_loss(forward: Callable[[torch.Tensor], torch.Tensor], photo: torch.Tensor, output: torch.Tensor,
                            shift: tuple[int, int], period: int = LATTICE_PERIOD, margin: int = 16) -> torch.Tensor:
    """How much the picture depends on where the photo sits on the pixel grid (not in the papers).

    A grid pattern from strided or pooled layers is tied to the image's pixel lattice, not to its content:
    move the photo by (dy, dx) px, not a multiple of the network's stride, and the pattern stays where it
    was while the picture moves. So, with x' = photo[dy : dy+H', dx : dx+W'] (H' = H − ``period``):
    L = mean |T(x') − T(x)[dy : dy+H', dx : dx+W']| over the overlap less ``margin`` px at each edge (where
    the two crops' padding differs; at most a quarter of the overlap on small crops). Texture that follows the
    photo costs nothing; a lattice-locked pattern of amplitude a costs about a. ``forward`` is the model with
    this batch's style fixed; ``output`` = T(photo).
    """
    dy, dx = shift
    if not (0 <= dy < period and 0 <= dx < period) or (dy, dx) == (0, 0):
        raise ValueError(f"shift {shift} must be in [0, {period}) on each axis and not (0, 0)")
    h, w = photo.shape[-2] - period, photo.shape[-1] - period
    if min(h, w) < period:
        raise ValueError(f"pictures of {photo.shape[-2]}×{photo.shape[-1]} px are too small to shift by up to {period} px")
    margin = min(margin, h // 4, w // 4)
    moved = forward(photo[..., dy:dy + h, dx:dx + w])
    still = output[..., dy:dy + h, dx:dx + w]
    inner = (..., slice(margin, h - margin), slice(margin, w - margin))
    return (moved[inner] - still[inner]).abs().mean()
