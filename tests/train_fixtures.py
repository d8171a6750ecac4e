"""Small synthetic training data (no downloads): photos-like content images and striped 'paintings'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_photo(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([xx, yy, 1 - xx * yy], -1) * rng.uniform(0.4, 1.0, 3)
    for _ in range(6):
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        base[y0 : y0 + rng.integers(4, h // 2), x0 : x0 + rng.integers(4, w // 2)] = rng.uniform(0, 1, 3)
    return Image.fromarray((base.clip(0, 1) * 255).astype(np.uint8))


def make_painting(rng: np.random.Generator, size: int, period: int) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = (np.sin((xx + yy) * 2 * np.pi / period) > 0).astype(np.float32)
    colours = rng.uniform(0, 1, (2, 3))
    img = stripes[..., None] * colours[0] + (1 - stripes[..., None]) * colours[1]
    return Image.fromarray((img * 255).astype(np.uint8))


@pytest.fixture(scope="session")
def train_data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-data")
    rng = np.random.default_rng(0)
    content = root / "content" / "nested"
    content.mkdir(parents=True)
    for i in range(6):
        make_photo(rng, (72, 96)).save(content / f"photo{i}.png")
    (root / "content" / "corrupt.jpg").write_bytes(b"this is not a jpeg")
    styles = root / "styles"
    styles.mkdir()
    for i, period in enumerate((6, 10, 16)):
        make_painting(rng, 96, period).save(styles / f"painting{i}.png")
    empty = root / "empty"
    empty.mkdir()
    return {"content": root / "content", "styles": styles, "style": styles / "painting0.png", "empty": empty}
