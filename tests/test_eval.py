"""``fauve eval`` on tiny models and 64 px images: the table, the JSON, the contact sheet, the
Gatys comparison and its cache, and the losses being the trainer's own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from train_fixtures import make_painting, make_photo

pytestmark = pytest.mark.timeout(900)

TILE = 64


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("FAUVE_OFFLINE", "1")


def _recipe(content_layers: list[str], style_layers: list[str], style_weight: float, size: int = 32) -> dict:
    """What fauve.train.loop._export records in config.json."""
    return {"content_data": "synthetic", "size": size, "style_size": 64, "batch_size": 1, "iters": 0, "lr": 1e-3,
            "content_layers": content_layers, "style_layers": style_layers, "content_weight": 1.0,
            "style_weight": style_weight, "tv_weight": 0.0, "seed": 0, "final_losses": {}, "skipped_images": 0}


@pytest.fixture(scope="module")
def eval_setup(tmp_path_factory):
    """Two 64×48 photos, two striped paintings, and four tiny untrained models saved as model folders:
    two ulyanov (same recipe: they must share Gatys runs), a 2-style dumoulin, a 1-style adain."""
    from fauve.evaluate import load_tensor
    from fauve.models import build_model

    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(3)
    (root / "content").mkdir()
    (root / "styles").mkdir()
    for i in range(2):
        make_photo(rng, (48, 64)).save(root / "content" / f"photo{i}.png")
    for i, period in enumerate((6, 12)):
        make_painting(rng, 64, period).save(root / "styles" / f"painting{i}.png")
    gram = (["relu1_2", "relu2_2", "relu3_3", "relu4_3"], 3.0)
    torch.manual_seed(0)
    specs = {
        "uly-a": ("ulyanov", dict(width=0.125), ["painting0"], _recipe(["relu2_2"], *gram)),
        "uly-b": ("ulyanov", dict(width=0.25), ["painting0"], _recipe(["relu2_2"], *gram)),
        "dum": ("dumoulin", dict(width=0.125), ["painting0", "painting1"], _recipe(["relu3_3"], *gram)),
        "ada": ("adain", dict(width=0.125, vgg_source="hed"), ["painting0"],
                _recipe(["relu4_1"], ["relu1_1", "relu2_1", "relu3_1", "relu4_1"], 2.0)),
    }
    folders = {}
    for name, (method, arch, styles, recipe) in specs.items():
        model = build_model(method, num_styles=len(styles), style_names=styles, **arch)
        if method == "adain":
            model.load_encoder_weights()
            model.set_named_styles([load_tensor(root / "styles" / f"{s}.png", 32) for s in styles])
        model.loss_net = {"name": "vgg16", "source": "hed", "preprocessing": "caffe-bgr-0-255-meansub"}
        model.training_recipe = recipe
        model.style_sources = [f"{s}.png" for s in styles]
        model.save_pretrained(root / name)
        folders[name] = root / name
    return {"root": root, "models": folders}


def _run_cli(*args: str) -> int:
    from fauve.cli import main

    return main(["eval", *args])


@pytest.fixture(scope="module")
def report(eval_setup):
    root, models = eval_setup["root"], eval_setup["models"]
    out = root / "out"
    from fauve.cli import main

    rc = main(["eval", *map(str, models.values()), "--content", str(root / "content"), "--styles", str(root / "styles"),
               "--sizes", "48,64", "--gatys-sizes", "48", "--gatys-subset", "1", "--gatys-iters", "5", "--unseen",
               "--sheet-tile", str(TILE), "--quiet", "-o", str(out)])
    assert rc == 0
    return json.loads((out / "eval.json").read_text()), out


def test_rows_cover_every_model_style_and_size(report):
    data, out = report
    got = sorted((r["model"], r["style"], r["unseen"], r["size"]) for r in data["rows"])
    expected = sorted((m, s, u, size) for size in (48, 64) for m, s, u in [
        ("uly-a", "painting0", False), ("uly-b", "painting0", False), ("dum", "painting0", False),
        ("dum", "painting1", False), ("ada", "painting0", False), ("ada", "painting1", True)])
    assert got == expected
    assert data["settings"]["gatys_photos"] == ["photo0.png"]
    for r in data["rows"]:
        assert r["all"]["n"] == 2 and r["pairs"]["n"] == 1
        assert all(np.isfinite(r["all"][k]) and r["all"][k] > 0 for k in ("content", "style", "total", "seconds"))
        w = 2.0 if r["method"] == "adain" else 3.0  # total = content + style_weight · style (TV weight 0)
        assert r["all"]["total"] == pytest.approx(r["all"]["content"] + w * r["all"]["style"], rel=1e-5)
        assert (r["gatys"] is not None) == (r["size"] == 48)
        assert set(r["grid"]) == {"period2", "period4", "period8", "worst"} and r["grid"]["worst"] > 0
        assert r["grid"]["worst"] == max(r["grid"][f"period{p}"] for p in (2, 4, 8))
        assert set(r["stripes"]) == {"horizontal", "vertical", "worst"} and r["stripes"]["worst"] > 0


def test_gatys_lowers_the_objective_and_ships_follows_the_ratios(report):
    data, out = report
    for r in data["rows"]:
        g = r["gatys"]
        if g is None:
            assert "ships" in r
            continue
        assert g["iterations"] == 5 and g["seconds"] > 0
        assert r["content_ratio"] == pytest.approx(r["pairs"]["content"] / g["content"])
        assert r["style_ratio"] == pytest.approx(r["pairs"]["style"] / g["style"])
        clean = all(o["grid"]["worst"] <= data["settings"]["grid_limit"] and o["stripes"]["worst"] <= data["settings"]["stripe_limit"]
                    for o in data["rows"] if (o["model"], o["style"]) == (r["model"], r["style"]))
        assert r["ships"] == (r["content_ratio"] <= 1.5 and r["style_ratio"] <= 1.5 and clean)
    runs = [json.loads(p.read_text()) for p in sorted((out / "gatys").glob("*.json"))]
    # one run per (loss recipe, style, photo, size): the two ulyanov models share theirs
    assert len(runs) == 5
    for run in runs:
        assert run["total"] < run["history"][0]  # from the photo (init content), L-BFGS lowered the loss
        assert len(run["history"]) == 2  # start, after the one chunk of 5 iterations
    uly = [r for r in data["rows"] if r["model"].startswith("uly") and r["size"] == 48]
    assert uly[0]["gatys"]["total"] == uly[1]["gatys"]["total"]
    summary = {(s["model"], s["size"]): s for s in data["summary"]}
    assert summary["dum", 48]["styles"] == 2 and summary["dum", 64]["gatys"] is None
    assert summary["ada", 48]["styles"] == 1  # the unseen style is reported per style, not in the model's mean


def test_the_onnxruntime_backend_scores_the_same_pictures(report, eval_setup, tmp_path):
    """``--backend onnxruntime`` judges the path users run; its losses are torch's within 1 %."""
    pytest.importorskip("onnxruntime")
    data, _ = report
    root, models = eval_setup["root"], eval_setup["models"]
    names = ("uly-a", "dum", "ada")
    rc = _run_cli(*(str(models[n]) for n in names), "--content", str(root / "content"), "--styles", str(root / "styles"),
                  "--sizes", "48,64", "--gatys-subset", "0", "--backend", "onnxruntime", "--quiet", "-o", str(tmp_path / "ort"))
    assert rc == 0
    ort = json.loads((tmp_path / "ort" / "eval.json").read_text())
    assert ort["settings"]["backend"] == "onnxruntime" and data["settings"]["backend"] == "torch"
    torch_rows = {(r["model"], r["style"], r["size"]): r["all"] for r in data["rows"] if r["model"] in names and not r["unseen"]}
    ort_rows = {(r["model"], r["style"], r["size"]): r["all"] for r in ort["rows"]}
    assert ort_rows.keys() == torch_rows.keys()
    for key, t in torch_rows.items():
        for term in ("content", "style", "total"):
            assert ort_rows[key][term] == pytest.approx(t[term], rel=1e-2), (key, term)
    assert "networks run in onnxruntime" in (tmp_path / "ort" / "eval.md").read_text()
    # Without Gatys photos the contact sheet still shows every model's pictures (of the first photos).
    sheet = Image.open(tmp_path / "ort" / "contact-48.png")
    assert sheet.height >= 20 + (1 + len(names)) * (48 + 4) + 4, sheet.size


def test_markdown_and_contact_sheet(report, eval_setup):
    data, out = report
    md = (out / "eval.md").read_text()
    assert "| uly-a | 48 | 1 |" in md and "| dum | painting1 | 64 |" in md and "painting1 (unseen)" in md
    sheet = np.asarray(Image.open(out / "contact-48.png").convert("RGB")).astype(float)
    th = 48  # 64×48 photos at a 64 px tile
    # painting0: uly-a, uly-b, Gatys | dum, Gatys | ada, Gatys; painting1: dum, Gatys | ada (unseen), Gatys
    rows = 11
    assert sheet.shape == (20 + (rows + 1) * (th + 4) + 4, 230 + (TILE + 4) + 4, 3)
    x0 = 230 + 4
    photo = np.asarray(Image.open(eval_setup["root"] / "content" / "photo0.png").convert("RGB").resize((TILE, th), Image.LANCZOS)).astype(float)
    assert np.abs(sheet[20:20 + th, x0:x0 + TILE] - photo).mean() < 2  # the content row is the photo
    cells = [sheet[20 + k * (th + 4):20 + k * (th + 4) + th, x0:x0 + TILE] for k in range(1, rows + 1)]
    assert all(c.std() > 1 for c in cells)  # every row holds a picture, not the white background
    assert np.abs(cells[2] - photo).mean() < np.abs(cells[0] - photo).mean()  # Gatys (from the photo) vs an untrained net


def test_grid_score_flags_lattice_patterns_not_texture():
    """The checkerboard number (fauve.artifacts): ≫ the limit for a faint 4 px pattern and for an
    untrained transposed-conv generator; under it for blur, noise, broadband texture and a
    nearest + conv generator; exactly 1 for the photo itself."""
    from fauve.artifacts import GRID_LIMIT, GridMeter
    from fauve.evaluate import load_tensor, to_numpy
    from fauve.models import build_model

    samples = Path(__file__).resolve().parents[1] / "core" / "samples"
    photos = [load_tensor(samples / name, 256) for name in ("parrots.jpg", "lighthouse.jpg")]
    rgbs = [to_numpy(x) for x in photos]
    rng = np.random.default_rng(0)

    def score(transform) -> dict[str, float]:
        meter = GridMeter()
        for x, rgb in zip(photos, rgbs):
            meter.add(np.clip(transform(x, rgb), 0, 1).astype(np.float32), rgb)
        return meter.score()

    def lattice(rgb, period):  # a fixed random tile repeated every `period` px
        yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
        return rng.uniform(-1, 1, (period, period))[yy % period, xx % period][..., None]

    def texture(rgb, sigma):
        noise = torch.from_numpy(rng.normal(0, 1, rgb.shape[:2]).astype(np.float32))[None, None]
        if sigma:
            noise = torchvision.transforms.functional.gaussian_blur(noise, [int(6 * sigma) | 1] * 2, [sigma, sigma])
        noise = noise[0, 0].numpy()[..., None]
        return noise / noise.std()

    def generator(upsample):
        torch.manual_seed(0)
        net = build_model("johnson", width=0.25, upsample=upsample).eval()
        return lambda x, rgb: to_numpy(net(x).clamp(0, 1).detach())

    import torchvision

    assert score(lambda x, rgb: rgb) == {"period2": 1.0, "period4": 1.0, "period8": 1.0, "worst": 1.0}
    grid = score(lambda x, rgb: rgb + 0.02 * lattice(rgb, 4))  # ±5 grey levels
    assert grid["period4"] > 100 * GRID_LIMIT and grid["period2"] > GRID_LIMIT
    assert score(generator("transposed"))["worst"] > 10 * GRID_LIMIT
    for clean in (lambda x, rgb: rgb + 0.05 * texture(rgb, 0), lambda x, rgb: rgb + 0.15 * texture(rgb, 1.0),
                  lambda x, rgb: to_numpy(torchvision.transforms.functional.gaussian_blur(x, [9, 9], [1.5, 1.5])),
                  generator("nearest")):
        assert score(clean)["worst"] < GRID_LIMIT
    with pytest.raises(ValueError, match="differ in size"):
        GridMeter().add(rgbs[0][:64], rgbs[0])


def test_stripe_score_flags_fine_parallel_lines_not_texture_or_strokes():
    """The stripe number (fauve.artifacts.StripeMeter): over the limit for faint horizontal hatching
    of any period (off the upsampling lattice) and for wavy colour bands; under it for noise,
    blur, isotropic brush-like texture and a few long strokes; 1 for the photo itself."""
    from fauve.artifacts import STRIPE_LIMIT, StripeMeter
    from fauve.evaluate import load_tensor, to_numpy

    samples = Path(__file__).resolve().parents[1] / "core" / "samples"
    rgbs = [to_numpy(load_tensor(samples / name, 384)) for name in ("parrots.jpg", "lighthouse.jpg")]
    rng = np.random.default_rng(0)

    def score(transform) -> dict[str, float]:
        meter = StripeMeter()
        for rgb in rgbs:
            meter.add(np.clip(transform(rgb), 0, 1).astype(np.float32), rgb)
        return meter.score()

    def rows(rgb):
        yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]].astype(np.float32)
        return yy, xx

    def hatching(rgb, period, amplitude=0.1, axis=0):
        yy, xx = rows(rgb)
        return rgb + amplitude * np.sin(2 * np.pi * (yy if axis == 0 else xx) / period)[..., None]

    def wavy_bands(rgb):  # coloured bands ~5 px apart, wandering up and down by ±1.5 px
        yy, xx = rows(rgb)
        band = np.sin(2 * np.pi * (yy + 1.5 * np.sin(2 * np.pi * xx / 90)) / 5.3)
        return rgb + 0.1 * np.stack([band, 0.7 * band, 0.4 * band], -1)

    def blobs(rgb, sigma):  # isotropic texture
        import torchvision

        noise = torch.from_numpy(rng.normal(0, 1, rgb.shape[:2]).astype(np.float32))[None, None]
        noise = torchvision.transforms.functional.gaussian_blur(noise, [int(6 * sigma) | 1] * 2, [sigma, sigma])[0, 0].numpy()
        return rgb + 0.1 * (noise / noise.std())[..., None]

    def strokes(rgb):  # a few long diagonal and horizontal strokes, like a painting's
        out = rgb.copy()
        for _ in range(12):
            y0, x0 = rng.integers(0, rgb.shape[0] - 20), rng.integers(0, rgb.shape[1] - 120)
            colour, slope = rng.uniform(0, 1, 3), rng.choice([0, 8])
            for t in range(120):
                out[y0 + (t // slope if slope else 0): y0 + 3 + (t // slope if slope else 0), x0 + t] = colour
        return out

    assert score(lambda rgb: rgb)["worst"] == pytest.approx(1.0)
    for period in (3.0, 4.7, 7.0):
        assert score(lambda rgb: hatching(rgb, period))["horizontal"] > STRIPE_LIMIT, period
    assert score(lambda rgb: hatching(rgb, 5.5, axis=1))["vertical"] > STRIPE_LIMIT
    assert score(wavy_bands)["worst"] > STRIPE_LIMIT
    for clean in (lambda rgb: rgb + 0.05 * rng.normal(0, 1, rgb.shape), lambda rgb: blobs(rgb, 1.5), lambda rgb: blobs(rgb, 4), strokes):
        assert score(clean)["worst"] < STRIPE_LIMIT
    with pytest.raises(ValueError, match="differ in size"):
        StripeMeter().add(rgbs[0][:64], rgbs[0])


def test_scorer_is_the_trainers_loss(eval_setup):
    """The eval loss of an output equals the trainer's loss (Method.perceptual) on the same images."""
    from fauve.evaluate import Scorer, load_tensor, loss_spec
    from fauve.models import load_model
    from fauve.train.loop import TrainConfig
    from fauve.train.methods import method_class

    root = eval_setup["root"]
    model = load_model(eval_setup["models"]["dum"])
    spec = loss_spec(model)
    assert spec.content_layers == ("relu3_3",) and spec.style_weight == 3.0 and spec.style_size == 64
    cfg = TrainConfig(method="dumoulin", content=str(root / "content"), styles=[str(root / "styles" / "painting1.png")],
                      out=str(root / "unused"), vgg_source="hed", content_layers=spec.content_layers,
                      style_layers=spec.style_layers, style_weight=3.0).fill_defaults()
    style = load_tensor(root / "styles" / "painting1.png", 64)
    method = method_class("dumoulin")(cfg, [style], ["painting1"], torch.device("cpu"))
    content = load_tensor(root / "content" / "photo1.png", 64)
    with torch.no_grad():
        output = model(content, torch.tensor([[0.0, 1.0]])).clamp(0, 1)
        trainer = method.perceptual(output, content, method.target_grams)
        scorer = Scorer(spec, device="cpu")
        st = scorer.style_target(style)
        ours = scorer.terms(output, scorer.content_target(scorer.content_features(content), st), st)
    assert float(ours["content"]) == pytest.approx(trainer.parts["content"].item(), rel=1e-5)
    assert float(ours["style"]) == pytest.approx(trainer.parts["style"].item(), rel=1e-5)
    assert float(ours["total"]) == pytest.approx(float(trainer.loss), rel=1e-5)
    # and the photo itself has zero content loss
    with torch.no_grad():
        own = scorer.terms(content, scorer.content_features(content), st)
    assert float(own["content"]) == pytest.approx(0.0, abs=1e-9) and float(own["style"]) > 0


def test_styles_without_images_and_bad_sizes_are_clear_errors(eval_setup, tmp_path, capsys):
    root = eval_setup["root"]
    other = tmp_path / "other"
    other.mkdir()
    make_painting(np.random.default_rng(1), 64, 8).save(other / "unrelated.png")
    rc = _run_cli(str(eval_setup["models"]["uly-a"]), "--content", str(root / "content"), "--styles", str(other), "-o", str(tmp_path / "o"))
    err = capsys.readouterr().err
    assert rc != 0 and "None of uly-a's styles" in err and "hint:" in err
    rc = _run_cli(str(eval_setup["models"]["uly-a"]), "--content", str(root / "content"), "--styles", str(root / "styles"),
                  "--sizes", "16", "-o", str(tmp_path / "o"))
    err = capsys.readouterr().err
    assert rc != 0 and "at least 32 px" in err
    rc = _run_cli(str(eval_setup["models"]["uly-a"]), "--content", str(tmp_path / "missing"), "--styles", str(root / "styles"), "-o", str(tmp_path / "o"))
    assert rc != 0 and "does not exist" in capsys.readouterr().err


def test_contact_sheet_labels_are_cut_to_fit_beside_the_style_thumbnail():
    from PIL import ImageDraw, ImageFont

    from fauve.evaluate import _fit

    draw, font = ImageDraw.Draw(Image.new("RGB", (10, 10))), ImageFont.load_default(size=12)
    long = "turner_shipwreck_of_the_minotaur"
    cut = _fit(draw, long, font, 150)
    assert cut.endswith("…") and long.startswith(cut[:-1]) and draw.textlength(cut, font=font) <= 150
    assert _fit(draw, "great_wave", font, 150) == "great_wave"
