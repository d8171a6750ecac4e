"""Embedded ICC profiles: the network sees the photo's colours in sRGB whatever the file's colour space, and
`fauve stylize` writes the result back in that space with the profile embedded (fauve/color_profile.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from icc_profiles import gray_profile, rgb_profile
from PIL import Image, ImageCms

import fauve
from fauve.cli import main
from fauve.color_profile import png_icc
from fauve.imageio import encode_png, read_image
from fauve.models import build_model

WIDE = rgb_profile("Wide test RGB")
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _photo(h: int = 40, w: int = 56) -> np.ndarray:
    """A photo (the bundled parrots) with a band of saturated green (where sRGB and a wide space differ most)
    and a grey ramp."""
    with Image.open(Path(fauve.__file__).parent / "samples" / "parrots.jpg") as parrots:
        pixels = np.array(parrots.convert("RGB").resize((w, h), Image.LANCZOS))
    pixels[:8] = [[0, 200, 0]] * w
    pixels[8:16, :, :] = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    return pixels


def _in_wide_space(srgb: np.ndarray) -> np.ndarray:
    wide = ImageCms.ImageCmsProfile(io.BytesIO(WIDE))
    return np.asarray(ImageCms.profileToProfile(Image.fromarray(srgb), SRGB, wide,
                                                renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC))


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP"])
def test_a_photo_in_a_wide_colour_space_reads_as_the_same_srgb_colours(tmp_path, fmt):
    photo = _photo()
    wide = _in_wide_space(photo)
    assert np.abs(wide.astype(int) - photo).max() > 40  # the two encodings really differ
    Image.fromarray(photo).save(tmp_path / "srgb.png")
    Image.fromarray(wide).save(tmp_path / f"wide.{fmt.lower()}", format=fmt, icc_profile=WIDE,
                               **({"lossless": True} if fmt == "WEBP" else {}))
    plain = read_image(tmp_path / "srgb.png")
    managed = read_image(tmp_path / f"wide.{fmt.lower()}")
    assert plain.profile is None
    assert managed.profile is not None and managed.profile.name == "Wide test RGB" and managed.profile.converted
    error = np.abs(managed.rgb - plain.rgb) * 255  # an 8-bit round trip through two spaces (darkest shades: a few levels)
    assert error.mean() < 0.5 and np.percentile(error, 99) <= 3 and error.max() <= 12
    assert np.abs(managed.rgb - wide / 255.0).max() * 255 > 40  # and not the raw numbers


def test_an_srgb_profile_changes_nothing(tmp_path):
    photo = _photo()
    Image.fromarray(photo).save(tmp_path / "tagged.png", icc_profile=ImageCms.ImageCmsProfile(
        ImageCms.createProfile("sRGB")).tobytes())
    data = read_image(tmp_path / "tagged.png")
    assert data.profile is None and np.array_equal(np.round(data.rgb * 255).astype(np.uint8), photo)


def test_a_grey_profile_is_converted_to_srgb_and_a_broken_one_is_ignored(tmp_path):
    ramp = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (24, 1))
    Image.fromarray(ramp, "L").save(tmp_path / "linear.png", icc_profile=gray_profile("Gray gamma 1.0", 1.0))
    data = read_image(tmp_path / "linear.png")
    assert data.profile is not None and data.profile.space == "GRAY" and not data.profile.tags_output
    mid = data.rgb[0, 32, 0]
    assert abs(mid - ramp[0, 32] / 255) > 0.15  # linear 0.51 is sRGB ~0.74: brighter
    photo = _photo()
    Image.fromarray(photo).save(tmp_path / "mismatch.png", icc_profile=gray_profile())  # a grey profile on colour pixels
    mismatch = read_image(tmp_path / "mismatch.png")
    assert mismatch.profile is None and np.array_equal(np.round(mismatch.rgb * 255).astype(np.uint8), photo)
    Image.fromarray(ramp, "L").save(tmp_path / "broken.png", icc_profile=b"not an ICC profile at all")
    broken = read_image(tmp_path / "broken.png")
    assert broken.profile is None and np.allclose(broken.rgb[:, :, 0], ramp / 255.0, atol=1e-6)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny"
    build_model("ulyanov", width=0.125, style_names=["x"]).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_stylize_writes_back_in_the_files_colour_space_with_its_profile(tmp_path, model_dir, suffix, capsys):
    wide = _in_wide_space(_photo())
    Image.fromarray(wide).save(tmp_path / "wide.png", icc_profile=WIDE)
    out = tmp_path / f"out{suffix}"
    # strength 0 gives the photo back: what comes out must be the file's own pixels, in its own space
    assert main(["stylize", str(tmp_path / "wide.png"), "--style", str(model_dir), "--strength", "0", "--device", "cpu",
                 "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["outputs"][0]["color_profile"] == "Wide test RGB"
    with Image.open(out) as result:
        assert result.info.get("icc_profile") == WIDE
        pixels = np.asarray(result.convert("RGB")).astype(int)
    expected = wide
    if suffix == ".jpg":  # compare with the same pixels through Pillow's JPEG encoder, not with JPEG's losses
        buffer = io.BytesIO()
        Image.fromarray(wide).save(buffer, format="JPEG", quality=95)
        expected = np.asarray(Image.open(buffer).convert("RGB"))
    error = np.abs(pixels - expected)
    assert error.mean() < 1 and np.percentile(error, 99) <= 4

    assert main(["stylize", str(tmp_path / "wide.png"), "--style", str(model_dir), "--device", "cpu",
                 "-o", str(tmp_path / "styled.png")]) == 0
    with Image.open(tmp_path / "styled.png") as styled:
        assert styled.info.get("icc_profile") == WIDE


def test_16_bit_pngs_keep_their_pixels_and_carry_the_profile(tmp_path, model_dir):
    rng = np.random.default_rng(3)
    pixels16 = (rng.random((32, 48, 3)) * 65535).astype(np.uint16)
    from fauve.color_profile import ColorProfile

    tagged = encode_png(pixels16, bits=16, profile=ColorProfile(WIDE, "Wide test RGB", "RGB", converted=False))
    assert png_icc(tagged) == WIDE
    (tmp_path / "deep.png").write_bytes(tagged)
    data = read_image(tmp_path / "deep.png")
    assert data.bits == 16 and data.profile is not None and not data.profile.converted
    assert np.allclose(data.rgb, pixels16 / 65535.0, atol=1e-6)  # 16-bit: the file's own values
    assert main(["stylize", str(tmp_path / "deep.png"), "--style", str(model_dir), "--strength", "0", "--device", "cpu",
                 "-o", str(tmp_path / "out.png")]) == 0
    out = read_image(tmp_path / "out.png")
    assert out.bits == 16 and png_icc((tmp_path / "out.png").read_bytes()) == WIDE
    assert np.abs(out.rgb - data.rgb).max() < 2 / 65535


def test_the_python_api_takes_a_pil_image_with_a_profile_and_gives_one_back(model_dir):
    from fauve.pipeline import Stylizer

    photo = _photo()
    wide = Image.fromarray(_in_wide_space(photo))
    wide.info["icc_profile"] = WIDE
    stylizer = Stylizer(model_dir, device="cpu")
    same = stylizer.run(wide, strength=0)
    assert same.info.get("icc_profile") == WIDE
    error = np.abs(np.asarray(same).astype(int) - np.asarray(wide))
    assert error.mean() < 1 and np.percentile(error, 99) <= 4
    # the network saw the sRGB colours: the styled picture equals the one of the plain sRGB photo, put back in the space
    styled = stylizer.run(wide)
    from_srgb_photo = stylizer.run(Image.fromarray(photo))
    assert np.abs(np.asarray(ImageCms.profileToProfile(styled, ImageCms.ImageCmsProfile(io.BytesIO(WIDE)), SRGB,
                                                       renderingIntent=1)).astype(int)
                  - np.asarray(from_srgb_photo)).mean() < 2


def test_a_phone_jpeg_with_a_profile_and_an_orientation_gets_both(tmp_path):
    wide = _in_wide_space(_photo(40, 56))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    Image.fromarray(wide).save(tmp_path / "phone.jpg", quality=95, icc_profile=WIDE, exif=exif)
    data = read_image(tmp_path / "phone.jpg")
    assert data.rgb.shape == (56, 40, 3) and data.profile is not None and data.profile.name == "Wide test RGB"


def test_an_8_bit_photo_written_as_16_bit_png_is_srgb_not_mislabelled(tmp_path):
    Image.fromarray(_in_wide_space(_photo())).save(tmp_path / "wide.png", icc_profile=WIDE)
    data = read_image(tmp_path / "wide.png")
    (tmp_path / "deep.png").write_bytes(encode_png(data.rgb, bits=16, profile=data.profile))
    assert png_icc((tmp_path / "deep.png").read_bytes()) is None  # sRGB values: no wide-gamut tag on them
    assert np.abs(read_image(tmp_path / "deep.png").rgb - data.rgb).max() < 1e-4
