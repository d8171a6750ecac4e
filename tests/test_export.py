"""ONNX export and the onnxruntime backend: the same picture as PyTorch, for every method.

Tolerances: the graphs are fp32 like PyTorch, so only the order of floating-point operations
differs; outputs in [0, 1] agree to 1e-4 (measured: ≤ 2e-5).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fauve import cli
from fauve.errors import FauveError, ModelFileError
from fauve.export import GRAPH_INPUTS, OnnxGraph, compare_with_torch, export_onnx
from fauve.models import build_model, load_model
from fauve.pipeline import Stylizer

ort = pytest.importorskip("onnxruntime")

def cli_main(argv: list[str]) -> int:
    """``fauve ARGV`` through the real entry point (which imports only the invoked command's module)."""
    return cli.main(argv)


METHODS = ["johnson", "ulyanov", "dumoulin", "msgnet", "adain"]
TOL = 1e-4


def tiny_trained_like(method: str, **arch) -> torch.nn.Module:
    """A tiny model whose output is a real picture in (0, 1): random conditioning tables (so mixes
    differ), stored style statistics from random images, a damped last layer."""
    torch.manual_seed(0)
    kw: dict = {"width": 0.125, **arch}
    if method == "msgnet":
        kw["num_blocks"] = 1
    if method in ("dumoulin", "msgnet", "adain"):
        kw.update(num_styles=2, style_names=["a", "b"])
    model = build_model(method, **kw).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("gamma", "beta")):
                p.copy_(torch.rand_like(p) * (1.5 if name.endswith("gamma") else 0.4))
        if method == "msgnet":
            model.set_style_grams([torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48) ** 3])
        if method == "adain":
            model.set_named_styles([torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48) ** 3])
        last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        if not last.weight.any():  # a residual-output model's last conv starts at zero
            last.weight.normal_()
        last.weight.mul_(1.5 / last.weight.abs().sum(dim=(1, 2, 3), keepdim=True))  # |output − 0.5| ≤ 1.5·max|input|
        last.bias.fill_(0.5)
    return model


def picture(h: int = 70, w: int = 90, seed: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    rgb = np.stack([0.5 + 0.4 * np.sin(xx / 6), 0.5 + 0.4 * np.cos(yy / 4), (xx + yy) / (h + w)], axis=2)
    return np.clip(rgb + rng.normal(0, 0.05, rgb.shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize("method", ["ulyanov", "dumoulin", "msgnet"])
def test_a_residual_output_model_exports_with_its_input_skip(method):
    model = tiny_trained_like(method, residual_output=True)
    assert compare_with_torch(model, export_onnx(model), height=64, width=96) < TOL


def test_an_adain_model_at_relu3_1_exports_its_256_statistics_and_tiles_the_same():
    model = tiny_trained_like("adain", layer="relu3_1")
    data = export_onnx(model)
    assert compare_with_torch(model, data, height=44, width=60) < TOL  # multiples of 4, not of 8
    import onnx

    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in onnx.load_from_string(data).graph.input}
    assert shapes["style_mean"] == shapes["style_std"] == [1, 256]
    img, tiled = picture(), dict(tile=64, overlap=8, context=8)
    torch_run, ort_run = Stylizer(model, device="cpu"), Stylizer(model, device="cpu", backend="onnxruntime")
    assert np.abs(ort_run.run(img, **tiled) - torch_run.run(img, **tiled)).max() < TOL


@pytest.mark.parametrize("method", ["ulyanov", "adain"])
def test_a_bilinear_upsampling_model_exports_the_same_resize(method):
    model = tiny_trained_like(method, upsample="bilinear")
    data = export_onnx(model)
    assert compare_with_torch(model, data, height=64, width=96) < TOL
    assert compare_with_torch(model, data, height=40, width=56) < TOL


@pytest.fixture(scope="module", params=METHODS)
def pair(request):
    """(torch Stylizer, onnxruntime Stylizer) sharing one model; sessions are cached across tests."""
    model = tiny_trained_like(request.param)
    return Stylizer(model, device="cpu"), Stylizer(model, device="cpu", backend="onnxruntime")


@pytest.mark.parametrize("method", METHODS)
def test_exported_graph_matches_pytorch_at_two_sizes(method):
    model = tiny_trained_like(method)
    data = export_onnx(model)
    assert compare_with_torch(model, data, height=64, width=96) < TOL
    assert compare_with_torch(model, data, height=120, width=48) < TOL  # height and width are dynamic
    import onnx

    names = [i.name for i in onnx.load_from_string(data).graph.input]
    assert names == list(GRAPH_INPUTS[method])


def test_pipeline_onnxruntime_equals_torch_whole_and_tiled(pair):
    torch_run, ort_run = pair
    img = picture()
    whole = torch_run.run(img)
    assert whole.std() > 0.004  # a real picture, not a constant
    assert np.abs(ort_run.run(img) - whole).max() < TOL
    tiled = dict(tile=64, overlap=8, context=8)
    assert np.abs(ort_run.run(img, **tiled) - torch_run.run(img, **tiled)).max() < TOL


def test_pipeline_onnxruntime_conditioning(pair):
    torch_run, ort_run = pair
    model = torch_run.model
    img = picture(48, 64, seed=1)
    if model.multi_style:
        a, mix = torch_run.run(img, style="b"), torch_run.run(img, mix={"a": 0.3, "b": 0.7})
        assert np.abs(a - torch_run.run(img, style="a")).max() > 1e-3  # the styles differ
        assert np.abs(ort_run.run(img, style="b") - a).max() < TOL
        assert np.abs(ort_run.run(img, mix={"a": 0.3, "b": 0.7}) - mix).max() < TOL
    if model.accepts_style_image:
        style = picture(40, 40, seed=3) ** 2
        ref = torch_run.run(img, style_image=style, strength=0.6)
        assert np.abs(ort_run.run(img, style_image=style, strength=0.6) - ref).max() < TOL


@pytest.mark.parametrize("method", ["adain", "ulyanov"])
def test_the_file_alone_gives_the_pipelines_picture_at_any_size(method):
    """Run outside fauve, the whole-image graph mirrors the border margin (adain: 16 px) and rounds odd
    sides itself, so onnxruntime on the bare photo gives the pipeline's picture, at the photo's size."""
    model = tiny_trained_like(method)
    session = ort.InferenceSession(export_onnx(model), providers=["CPUExecutionProvider"])
    img = picture(45, 61, seed=2)  # neither side a multiple of 4
    feeds = {"image": torch.from_numpy(img).permute(2, 0, 1)[None].numpy()}
    if method == "adain":
        feeds.update(style_mean=model.style_means[:1].numpy(), style_std=model.style_stds[:1].numpy(), alpha=np.ones(1, np.float32))
    got = session.run(["stylized"], feeds)[0][0].transpose(1, 2, 0).clip(0, 1)
    ref = Stylizer(model, device="cpu").run(img, **({"style": "a"} if method == "adain" else {}))
    assert got.shape == ref.shape == img.shape
    assert np.abs(got - ref).max() < TOL
    if method == "adain":  # the margin is what makes them agree: the bare network differs along the borders
        with torch.no_grad():
            bare = OnnxGraph(model, pads_itself=False)(torch.from_numpy(picture(48, 64, seed=2)).permute(2, 0, 1)[None],
                                                       *map(torch.from_numpy, list(feeds.values())[1:]))
        edge = Stylizer(model, device="cpu").run(picture(48, 64, seed=2), style="a")
        assert np.abs(bare[0].permute(1, 2, 0).clamp(0, 1).numpy() - edge)[:4].max() > 1e-3


def test_a_picture_too_small_for_the_graphs_padding_runs_in_torch(pair):
    torch_run, ort_run = pair
    img = picture(16, 19, seed=4)  # the smallest picture fauve takes; adain mirrors 16 px, which needs 17
    assert np.abs(ort_run.run(img) - torch_run.run(img)).max() < TOL


def test_an_onnx_file_from_before_the_graph_padded_itself_is_refused(tmp_path):
    import onnx

    model = tiny_trained_like("adain")
    proto = onnx.load_from_string(export_onnx(model))
    assert {p.key: p.value for p in proto.metadata_props}["fauve.pads_itself"] == "1"
    del proto.metadata_props[:]  # what fauve wrote before the graph mirrored its own margin
    (tmp_path / "old.onnx").write_bytes(proto.SerializeToString())
    with pytest.raises(ModelFileError, match="older fauve") as err:
        Stylizer(model, device="cpu", backend="onnxruntime", onnx_path=str(tmp_path / "old.onnx"))
    assert "fauve export" in err.value.hint


def test_exported_file_via_cli_drives_the_pipeline(tmp_path, capsys):
    model = tiny_trained_like("dumoulin")
    model.save_pretrained(tmp_path / "model")
    out = tmp_path / "dumoulin.onnx"
    assert cli_main(["export", str(tmp_path / "model"), "--onnx", str(out), "--opset", "17"]) == 0
    line = capsys.readouterr().out
    assert out.is_file() and "max |onnxruntime − PyTorch|" in line
    assert float(line.rsplit("= ", 1)[1].split()[0]) < TOL
    loaded = load_model(tmp_path / "model")
    img = picture(52, 60)
    ref = Stylizer(loaded, device="cpu").run(img, style="b")
    from_file = Stylizer(loaded, device="cpu", backend="onnxruntime", onnx_path=str(out))
    assert np.abs(from_file.run(img, style="b") - ref).max() < TOL
    # the file, not a fresh export, runs: a file from other weights gives that model's picture
    other = tiny_trained_like("dumoulin")
    with torch.no_grad():
        other.net.out.conv.bias.fill_(0.3)
    export_onnx(other, tmp_path / "other.onnx")
    swapped = Stylizer(loaded, device="cpu", backend="onnxruntime", onnx_path=str(tmp_path / "other.onnx"))
    assert np.abs(swapped.run(img, style="b") - Stylizer(other, device="cpu").run(img, style="b")).max() < TOL


def test_an_onnx_file_of_another_model_is_refused(tmp_path):
    path = tmp_path / "ulyanov.onnx"
    export_onnx(tiny_trained_like("ulyanov"), path)
    with pytest.raises(ModelFileError, match="takes inputs"):
        Stylizer(tiny_trained_like("msgnet"), device="cpu", backend="onnxruntime", onnx_path=str(path))


def test_frozen_norm_graph_takes_every_norm_layer(tmp_path):
    model = tiny_trained_like("ulyanov")
    graph = OnnxGraph(model, frozen_norm=True)
    names = graph.input_names()
    assert names[0] == "image" and len(names) == 1 + 2 * graph.num_norm and graph.num_norm == 15
    data = export_onnx(model, frozen_norm=True)
    assert compare_with_torch(model, data, frozen_norm=True) < TOL


def test_bad_backend_and_opset_are_clear_errors(tmp_path, capsys):
    with pytest.raises(FauveError, match="Unknown backend"):
        Stylizer(tiny_trained_like("ulyanov"), device="cpu", backend="tensorrt")
    tiny_trained_like("ulyanov").save_pretrained(tmp_path / "m")
    assert cli_main(["export", str(tmp_path / "m"), "--onnx", str(tmp_path / "x.onnx"), "--opset", "9"]) == 2
    assert "--opset 17" in capsys.readouterr().err


def test_cli_stylize_and_server_engine_take_the_onnxruntime_backend(tmp_path):
    """`fauve stylize --backend onnxruntime` and `fauve serve --backend onnxruntime`'s engine give
    the PyTorch picture."""
    from fauve.imageio import read_image, write_image

    model = tiny_trained_like("dumoulin")
    model.save_pretrained(tmp_path / "model")
    photo = (picture(64, 80) * 255).astype(np.uint8)
    write_image(tmp_path / "in.png", photo)
    for backend in ("torch", "onnxruntime"):
        argv = ["stylize", str(tmp_path / "in.png"), "--style", f"{tmp_path / 'model'}#b", "--device", "cpu",
                "--backend", backend, "--quiet", "-o", str(tmp_path / f"{backend}.png")]
        assert cli.main(argv) == 0
    by_torch, by_ort = (read_image(tmp_path / f"{b}.png").rgb for b in ("torch", "onnxruntime"))
    assert np.abs(by_torch - photo / 255.0).max() > 0.05  # stylized, not copied
    assert np.abs(by_ort - by_torch).max() <= 1 / 255 + 1e-6  # 8-bit files: at most one level apart

    from fauve_bridge.engine import Engine, StyleRequest

    engines = {b: Engine([tmp_path / "model"], device="cpu", use_catalog=False, backend=b) for b in ("torch", "onnxruntime")}
    style_id = next(s.id for s in engines["torch"].list_styles() if s.style == "b")
    outs = {b: e.stylize(photo, StyleRequest(style=style_id)) for b, e in engines.items()}
    assert outs["torch"].shape == photo.shape and outs["torch"].dtype == np.uint8
    assert np.abs(outs["onnxruntime"].astype(int) - outs["torch"].astype(int)).max() <= 1
