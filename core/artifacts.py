"""A number for the checkerboard: how much more strongly a stylized picture repeats on the
upsampling lattice than the photo it came from.

A generator that upsamples by 2 (transposed conv, or nearest + conv not yet trained to blend) can
leave a pattern repeating every 2, 4 or 8 px (Odena, Dumoulin & Olah 2016, "Deconvolution and
Checkerboard Artifacts"). A pattern of period p is a set of spectral *lines* at the frequencies
(k·H/p, l·W/p); texture, brush strokes included, is broadband and raises those bins no more than
their neighbours. So each lattice bin's power is divided by the mean power of its 5×5
neighbourhood in the output or in the photo, whichever is higher (≈1 for texture, ≫1 for a line
that stands out), averaged over the bins and the photos, and divided by the same number for the
photos themselves. Measured at 512 px on 6 Kodak photos (session 6, docs/training.md): 0.9–1.4
for johnson-starry-night, dumoulin-16 and the Great Wave, Scream and Composition VII ulyanov nets;
8.8 for ulyanov-starry-night and 36 for its slim version (a fine hatching), 11 for the AdaIN decoder's
4 px grid; an untrained transposed-conv net scores ~200, a faint (±5/255) 4 px pattern ~2·10³.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERIODS = (2, 4, 8)
# Above this a lattice pattern shows on flat areas at 100 % (the measurements above).
GRID_LIMIT = 3.0


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an (H, W, 3) float picture."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _spectrum(gray: np.ndarray) -> np.ndarray:
    return np.abs(np.fft.fft2(gray - gray.mean())) ** 2


def lattice_power(gray: np.ndarray, period: int, reference: np.ndarray | None = None) -> tuple[float, float]:
    """(fraction of the AC power on the period-``period`` lattice, line strength) of a 2-D picture
    whose sides are multiples of ``period``. Line strength: each lattice bin's power over the mean
    power of its 5×5 neighbourhood (without the bin), averaged over the bins; a spectral *line*
    scores ≫1, texture ≈1. With a ``reference`` picture of the same size (the photo), the
    neighbourhood is the busier of the two, so a faint line left on a smoothed output, invisible
    against the photo's own detail, does not count."""
    h, w = gray.shape
    if h % period or w % period:
        raise ValueError(f"picture sides {h}×{w} must be multiples of the period {period}")
    return _on_lattice(_spectrum(gray), period, _spectrum(reference) if reference is not None else None)


def _on_lattice(power: np.ndarray, period: int, ref: np.ndarray | None) -> tuple[float, float]:
    """``lattice_power`` on precomputed power spectra (one FFT per picture for all periods)."""
    h, w = power.shape
    total = max(float(power.sum()), 1e-20)
    bins = [((k * h // period) % h, (l * w // period) % w) for k in range(period) for l in range(period) if (k, l) != (0, 0)]
    on = sum(float(power[b]) for b in bins)
    lines = []
    for by, bx in bins:
        rows, cols = [(by + d) % h for d in range(-2, 3)], [(bx + d) % w for d in range(-2, 3)]
        level = (float(power[np.ix_(rows, cols)].sum()) - float(power[by, bx])) / 24
        if ref is not None:
            level = max(level, (float(ref[np.ix_(rows, cols)].sum()) - float(ref[by, bx])) / 24)
        lines.append(float(power[by, bx]) / max(level, 1e-20))
    return on / total, float(np.mean(lines))


class GridMeter:
    """Accumulates (output, photo) pairs; ``score()`` is, per period, the outputs' mean line
    strength on the lattice (against the busier of output and photo) over the photos' own, and
    ``worst`` the largest of those ratios."""

    def __init__(self, periods: Sequence[int] = PERIODS) -> None:
        self.periods = tuple(periods)
        self.sums = {p: [0.0, 0.0] for p in self.periods}

    def add(self, output: np.ndarray, photo: np.ndarray) -> None:
        """``output`` and ``photo``: (H, W, 3) floats of the same size."""
        if output.shape != photo.shape:
            raise ValueError(f"output {output.shape} and photo {photo.shape} differ in size")
        m = int(np.lcm.reduce(self.periods))
        h, w = output.shape[0] // m * m, output.shape[1] // m * m
        if not h or not w:
            return
        out, ref = _spectrum(luma(output[:h, :w])), _spectrum(luma(photo[:h, :w]))
        for p in self.periods:
            self.sums[p][0] += _on_lattice(out, p, ref)[1]
            self.sums[p][1] += _on_lattice(ref, p, None)[1]

    def score(self) -> dict[str, float] | None:
        if not any(s[1] for s in self.sums.values()):
            return None
        ratios = {f"period{p}": s[0] / max(s[1], 1e-20) for p, s in self.sums.items()}
        return {**ratios, "worst": max(ratios.values())}


# -- stripes off the lattice --------------------------------------------------------------------------
# A narrow generator can also draw fine parallel lines that follow no lattice: horizontal hatching
# a few px apart (session 7's width-0.25 Starry Night net at 1024 px), or wavy bands. Their power sits in
# blobs along one frequency axis, at a period and its harmonics, so along that axis the spectrum stands far
# above the rest of its ring; brush strokes raise it a little.
STRIPE_RING = (0.05, 0.45)  # cycles/px: from ~20 px down to ~2 px periods
STRIPE_WEDGE = 8.0  # degrees either side of the axis
STRIPE_BIN = 0.01  # cycles/px per ring
# Above this the lines show at 100 % (docs/training.md, session 9: at 1024 px on four Kodak photos that slim net
# scores 17.5, the full-width Starry Night net 2.5, the other shipped models ≤ 2.4 but dumoulin-16's Delaunay,
# 5.7, whose lattice grid is as strong: 6.1).
STRIPE_LIMIT = 3.0


def axis_excess(gray: np.ndarray) -> dict[str, float]:
    """How far the spectrum stands out along each frequency axis: per ring of radius r (``STRIPE_BIN``
    wide, within ``STRIPE_RING``), the mean power within ``STRIPE_WEDGE`` degrees of the axis over the
    mean power of the rest of the ring; the mean over the rings. ``horizontal`` is horizontal stripes (power on the
    vertical-frequency axis), ``vertical`` vertical ones. ≈1 for isotropic texture (a Hann window
    keeps the picture's borders from drawing lines of their own)."""
    h, w = gray.shape
    window = np.hanning(h)[:, None] * np.hanning(w)[None, :]
    power = np.fft.fftshift(np.abs(np.fft.fft2((gray - gray.mean()) * window)) ** 2)
    fy, fx = np.mgrid[:h, :w]
    fy, fx = (fy - h // 2) / h, (fx - w // 2) / w
    radius = np.hypot(fy, fx)
    angle = np.degrees(np.arctan2(np.abs(fx), np.abs(fy)))  # 0° on the vertical-frequency axis
    edges = np.arange(STRIPE_RING[0], STRIPE_RING[1] + 1e-9, STRIPE_BIN)
    ring_index = np.digitize(radius, edges) - 1
    valid = (ring_index >= 0) & (ring_index < len(edges) - 1)
    result = {}
    for name, on_axis in (("horizontal", angle < STRIPE_WEDGE), ("vertical", angle > 90 - STRIPE_WEDGE)):
        ratios = []
        for i in range(len(edges) - 1):
            ring = valid & (ring_index == i)
            axis, rest = ring & on_axis, ring & ~on_axis
            if axis.any() and rest.any():
                ratios.append(power[axis].mean() / max(power[rest].mean(), 1e-20))
        result[name] = float(np.mean(ratios)) if ratios else 1.0
    return result


class StripeMeter:
    """Accumulates (output, photo) pairs; ``score()`` is, per axis, the outputs' mean axis excess
    (luma) over the photos' own (at least 1, so a photo of a striped shirt does not excuse stripes
    elsewhere), and ``worst`` the larger of the two. Luma only: in the chroma channels the paintings'
    own colour bands (The Scream's sky) score as high as artefacts (session 9)."""

    def __init__(self) -> None:
        self.sums = {"horizontal": [0.0, 0.0], "vertical": [0.0, 0.0]}

    def add(self, output: np.ndarray, photo: np.ndarray) -> None:
        if output.shape != photo.shape:
            raise ValueError(f"output {output.shape} and photo {photo.shape} differ in size")
        if min(output.shape[:2]) < 16:  # too few rings to say anything
            return
        out, ref = axis_excess(luma(output)), axis_excess(luma(photo))
        for key in self.sums:
            self.sums[key][0] += out[key]
            self.sums[key][1] += max(ref[key], 1.0)

    def score(self) -> dict[str, float] | None:
        if not any(s[1] for s in self.sums.values()):
            return None
        ratios = {k: s[0] / s[1] for k, s in self.sums.items()}
        return {**ratios, "worst": max(ratios.values())}
