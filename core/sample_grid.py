"""The sample grid of a model card: the bundled sample photos, then one row per style.

Only photos that may ship are used (``fauve/samples``, from the Kodak suite), never the training
photos: a grid of training photos would publish research-use images on the Hub.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.utils import save_image

from fauve.models.base import StyleModel

SAMPLE_PHOTOS = (Path(__file__).resolve().parent / "samples" / "parrots.jpg",
                 Path(__file__).resolve().parent / "samples" / "lighthouse.jpg")
PADDING = 2


def sample_photos(size: int, photos: tuple[Path, ...] = SAMPLE_PHOTOS) -> torch.Tensor:
    """The photos as an (N, 3, size, size) batch in [0, 1]: short side resized to ``size``, centre crop."""
    batch = []
    for path in photos:
        with Image.open(path) as im:
            x = TF.to_tensor(im.convert("RGB"))
        batch.append(TF.center_crop(TF.resize(x, size, antialias=True), [size, size]))
    return torch.stack(batch)


def tile_size(grid_width: int, columns: int = len(SAMPLE_PHOTOS)) -> int:
    """The side of one picture in a grid ``grid_width`` pixels wide (torchvision's padding on every side)."""
    return (grid_width - PADDING * (columns + 1)) // columns


@torch.no_grad()
def render_sample_grid(model: StyleModel, path: str | Path, *, size: int | None = None, max_styles: int = 16,
                       photos: tuple[Path, ...] = SAMPLE_PHOTOS) -> Path:
    """Write ``path`` (PNG): the photos in the first row, then the photos in each style (at most ``max_styles``).

    ``size`` defaults to 256 px per picture, 160 px for models with more than 4 styles. The model is
    moved to the CPU in fp32 (in place), as the grid is the fp32 CPU picture.
    """
    from fauve.pipeline import Stylizer

    styles: list[int | None] = list(range(min(len(model.style_names), max_styles))) if model.multi_style else [None]
    size = size or (256 if len(styles) <= 4 else 160)
    content = sample_photos(size, photos)
    stylizer = Stylizer(model.float(), device="cpu", precision="fp32")
    rows = [content]
    for style in styles:
        outs = [stylizer.run(np.ascontiguousarray(x.permute(1, 2, 0).numpy()), style=style) for x in content]
        rows.append(torch.stack([torch.from_numpy(np.asarray(o, dtype=np.float32)).permute(2, 0, 1) for o in outs]))
    path = Path(path)
    save_image(torch.cat(rows).clamp(0, 1), path, nrow=len(photos), padding=PADDING)
    return path
