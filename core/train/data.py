"""Training data: any folder of images (recursive), resumable deterministic order, bad files skipped.

All randomness (order, crops, flips, style choice) is derived from (seed, epoch) or (seed, step),
so a run that is killed and resumed at step k sees exactly the batches the uninterrupted run saw.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, UnidentifiedImageError

from fauve.errors import InputImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def find_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputImageError(f"{folder} is not a folder.", "Pass a folder of training images (searched recursively).")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputImageError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}).", "Point --content/--styles at a folder with images in it.")
    return files


def read_rgb(path: Path) -> torch.Tensor | None:
    """(3, H, W) float in [0, 1], or None when the file cannot be decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                img = img.convert("RGB")
                img.load()
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
    return TF.to_dtype(TF.to_image(img), torch.float32, scale=True)


def load_style(path: str | Path, size: int | None) -> torch.Tensor:
    """A style image as (1, 3, H, W) in [0, 1], its long side resized to ``size``."""
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"Style image {path} does not exist.", "Check the path given to --style/--styles.")
    img = read_rgb(path)
    if img is None:
        raise InputImageError(f"Style image {path} cannot be read.", "Use a PNG or JPEG file.")
    if size:
        h, w = img.shape[-2:]
        scale = size / max(h, w)
        img = TF.resize(img, [max(8, round(h * scale)), max(8, round(w * scale))], antialias=True)
    return img[None]


def random_crop(img: torch.Tensor, size: int, gen: torch.Generator, jitter: tuple[float, float] = (1.0, 1.5)) -> torch.Tensor:
    """Resize so the short side is size·U(jitter), take a random size×size crop, flip half the time."""
    h, w = img.shape[-2:]
    u = torch.rand((), generator=gen).item()
    short = size * (jitter[0] + (jitter[1] - jitter[0]) * u)
    scale = short / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    img = TF.resize(img, [nh, nw], antialias=True)
    top = int(torch.randint(0, nh - size + 1, (), generator=gen))
    left = int(torch.randint(0, nw - size + 1, (), generator=gen))
    img = img[..., top : top + size, left : left + size]
    if torch.rand((), generator=gen).item() < 0.5:
        img = img.flip(-1)
    return img


@dataclass
class ImageStream:
    """An endless, deterministic stream of random crops from a folder.

    Batch ``step`` for rank ``rank`` of ``world`` is a pure function of (seed, step, rank), so
    resuming needs only the step number. Unreadable files are skipped and counted.
    """

    files: list[Path]
    size: int
    batch_size: int
    seed: int = 0
    rank: int = 0
    world: int = 1
    skipped: set[str] = field(default_factory=set)

    def _order(self, epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 7919 + epoch)
        return torch.randperm(len(self.files), generator=gen)

    def batch(self, step: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + step) * 131 + self.rank)
        per_step = self.batch_size * self.world
        start = step * per_step + self.rank * self.batch_size
        crops = []
        k = 0
        while len(crops) < self.batch_size:
            if k > len(self.files) + self.batch_size:
                raise InputImageError("No readable images in the content folder.", "Check that the files are valid JPEG/PNG images.")
            pos = start + k
            epoch, idx = divmod(pos, len(self.files))
            path = self.files[int(self._order(epoch)[idx])]
            k += 1
            img = read_rgb(path)
            if img is None or min(img.shape[-2:]) < 16:
                self.skipped.add(str(path))
                continue
            crops.append(random_crop(img, self.size, gen))
        return torch.stack(crops)

    def prefetch(self, start: int, stop: int, workers: int = 2, ahead: int = 4) -> Iterator[torch.Tensor]:
        """Batches ``start`` … ``stop - 1`` in order, decoded by ``workers`` threads ``ahead`` steps early
        (PIL and torch release the GIL), so a GPU is not kept waiting on JPEG decoding."""
        with ThreadPoolExecutor(workers, thread_name_prefix="fauve-data") as pool:
            queue: deque = deque()
            nxt = start
            for step in range(start, stop):
                while nxt < stop and nxt < step + ahead:
                    queue.append(pool.submit(self.batch, nxt))
                    nxt += 1
                yield queue.popleft().result()
