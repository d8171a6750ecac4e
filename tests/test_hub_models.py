"""Every model folder shipped in hub_models/ is a valid Hub repo that loads and styles a picture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from fauve.models import load_model
from fauve.pipeline import Stylizer

ROOT = Path(__file__).resolve().parent.parent / "hub_models"
SHIPPED = sorted(p for p in ROOT.iterdir() if (p / "config.json").is_file())


def test_at_least_one_style_is_bundled():
    assert SHIPPED, "hub_models/ has no model folder: `fauve serve` would have nothing to serve"


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_model_is_a_hub_repo_that_styles_a_photo(folder):
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "samples.png"} <= names
    assert not any(n.endswith((".pt", ".pth", ".bin", ".ckpt")) for n in names), "no pickles ship"
    card = (folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    config = json.loads((folder / "config.json").read_text())
    assert meta["library_name"] == "fauve" and meta["pipeline_tag"] == "image-to-image"
    assert "style-transfer" in meta["tags"] and config["method"] in meta["tags"]
    catalog = json.loads((ROOT / "catalog.json").read_text())
    assert folder.name in {m["folder"] for m in catalog["models"]}

    model = load_model(folder)
    rng = np.random.default_rng(0)
    photo = (rng.random((48, 64, 3)) * 0.3 + np.linspace(0, 0.7, 64)[None, :, None]).astype(np.float32)
    out = Stylizer(model, device="cpu").run(photo, style=0 if model.multi_style else None)
    assert out.shape == photo.shape and np.isfinite(out).all()
    assert np.abs(out - photo).mean() > 0.01, "the model returns the photo unchanged"


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_sample_grid_shows_the_bundled_photos_not_training_photos(folder):
    """The grid on the model card starts with fauve's bundled Kodak photos; the BSDS500 training
    photos are research-use images and must not be published with a model."""
    from PIL import Image

    from fauve.sample_grid import PADDING, sample_photos, tile_size

    grid = np.asarray(Image.open(folder / "samples.png").convert("RGB"), dtype=np.float32) / 255
    size = tile_size(grid.shape[1])
    photos = sample_photos(size).permute(0, 2, 3, 1).numpy()
    for c, photo in enumerate(photos):
        left = PADDING + c * (size + PADDING)
        tile = grid[PADDING:PADDING + size, left:left + size]
        assert np.abs(tile - photo).max() <= 1 / 255 + 1e-6, f"{folder.name}: top row, picture {c}"


@pytest.mark.skipif(not (ROOT / "adain" / "config.json").is_file(), reason="adain is not shipped")
def test_adain_paints_no_fringe_along_the_borders():
    """VGG pads with zeros, so without the pipeline's mirrored margin adain paints a band ~8 px wide along the
    borders (2–5× the photo's own change from the edge inward on three sides); with it each side changes no more
    than ~1.5× as much as the photo does. A picture smaller than the margin still comes back at its size."""
    from PIL import Image

    photo = np.asarray(Image.open(ROOT.parent / "core" / "samples" / "parrots.jpg").convert("RGB"), dtype=np.float32) / 255

    def edge_change(img: np.ndarray) -> np.ndarray:
        """Mean |outermost 4 px − the 4 px 12 px further in|, per side (top, bottom, left, right)."""
        return np.array([np.abs(img[:4] - img[12:16]).mean(), np.abs(img[-4:] - img[-16:-12]).mean(),
                         np.abs(img[:, :4] - img[:, 12:16]).mean(), np.abs(img[:, -4:] - img[:, -16:-12]).mean()])

    stylizer = Stylizer(load_model(ROOT / "adain"), device="cpu")
    for style in ("the_scream", "starry_night"):
        out = stylizer.run(photo, style=style)
        assert out.shape == photo.shape
        ratio = edge_change(out) / edge_change(photo)
        assert (ratio < 2.0).all(), (style, ratio.round(2))
    tiny = photo[200:216, 200:217]  # the smallest picture fauve takes (16 px): too small to mirror 16 px of
    assert stylizer.run(tiny, style="the_scream").shape == tiny.shape
