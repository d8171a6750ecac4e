"""Preserving the input's colours after stylization (Gatys, Bethge, Hertzmann & Shechtman 2016,
"Preserving Color in Neural Artistic Style Transfer", arXiv:1606.05897).

Two methods, both post-processes on float RGB arrays (H, W, 3) in [0, 1]:

- ``luminance``: luminance-only transfer. Convert both images to YIQ (the NTSC space the paper
  uses), keep the input's chroma (I, Q) and take the stylized output's luma (Y).
- ``histogram``: colour-histogram matching. Each RGB channel of the stylized output is mapped
  through its own CDF onto the CDF of the same channel of the input (the per-channel variant of
  the paper's colour transfer), so the output's colour distribution becomes the input's.
"""

from __future__ import annotations

import numpy as np

MODES = ("none", "luminance", "histogram")

# NTSC RGB → YIQ (FCC 1953 coefficients); the inverse is computed, not rounded by hand.
RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114],
     [0.595716, -0.274453, -0.321263],
     [0.211456, -0.522591, 0.311135]],
    dtype=np.float64,
)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def rgb_to_yiq(rgb: np.ndarray) -> np.ndarray:
    return (np.asarray(rgb, dtype=np.float32) @ RGB_TO_YIQ.T.astype(np.float32)).astype(np.float32)


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    return (np.asarray(yiq, dtype=np.float32) @ YIQ_TO_RGB.T.astype(np.float32)).astype(np.float32)


def transfer_luminance(content: np.ndarray, stylized: np.ndarray) -> np.ndarray:
    """Y of ``stylized`` with I, Q of ``content`` (same shape), clipped to [0, 1]."""
    _check_pair(content, stylized)
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = rgb_to_yiq(stylized)[..., 0]
    return np.clip(yiq_to_rgb(yiq), 0.0, 1.0)


def match_channel(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Map ``source`` values so that their empirical CDF becomes that of ``reference``.

    Each distinct source value goes to the reference quantile at the same cumulative frequency
    (linear interpolation between reference values); the shapes need not match.
    """
    src_values, src_index, src_counts = np.unique(source.ravel(), return_inverse=True, return_counts=True)
    ref_values, ref_counts = np.unique(reference.ravel(), return_counts=True)
    src_quantiles = np.cumsum(src_counts) / source.size
    ref_quantiles = np.cumsum(ref_counts) / reference.size
    mapped = np.interp(src_quantiles, ref_quantiles, ref_values)
    return mapped[src_index].reshape(source.shape).astype(np.float32)


def match_histograms(content: np.ndarray, stylized: np.ndarray) -> np.ndarray:
    """``stylized`` with each RGB channel's histogram matched to ``content``'s."""
    _check_pair(content, stylized, same_shape=False)
    # 16-bit quantisation keeps np.unique fast on large float images (65536 distinct values at most).
    src = np.rint(np.clip(stylized, 0, 1) * 65535).astype(np.uint16)
    ref = np.rint(np.clip(content, 0, 1) * 65535).astype(np.uint16)
    out = np.stack([match_channel(src[..., c], ref[..., c]) for c in range(3)], axis=-1)
    return np.clip(out / 65535.0, 0.0, 1.0).astype(np.float32)


def preserve_color(content: np.ndarray, stylized: np.ndarray, mode: str) -> np.ndarray:
    """Apply the colour-preservation ``mode`` (none | luminance | histogram)."""
    if mode in (None, "none"):
        return stylized
    if mode == "luminance":
        return transfer_luminance(content, stylized)
    if mode == "histogram":
        return match_histograms(content, stylized)
    from fauve.errors import FauveError

    raise FauveError(f"Unknown colour-preservation mode {mode!r}.", f"Use one of {', '.join(MODES)}.", code="bad_option")


def _check_pair(content: np.ndarray, stylized: np.ndarray, same_shape: bool = True) -> None:
    if content.ndim != 3 or content.shape[-1] != 3 or stylized.ndim != 3 or stylized.shape[-1] != 3:
        raise ValueError("colour preservation takes (H, W, 3) RGB arrays")
    if same_shape and content.shape != stylized.shape:
        raise ValueError(f"shapes differ: {content.shape} vs {stylized.shape}")
