"""The CUDA paths: every method, precision and bench variant gives the CPU's picture within
tolerance; training on the GPU (bf16 autocast, channels_last, torch.compile) lowers the loss; a GPU
out-of-memory is a clear error with a hint. Skipped where there is no CUDA device (CI); run on a GPU
with ``pytest tests/test_gpu.py``."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from fauve.bench import CUDA_VARIANTS, bench_model, make_runner, model_kwargs
from fauve.pipeline import Stylizer
from train_fixtures import train_data  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")
CPU = torch.device("cpu")
METHODS = ["johnson", "ulyanov", "dumoulin", "msgnet", "adain"]
# Mean absolute difference from the CPU's fp32 result, on pixels in [0, 1]. fp32 on CUDA uses TF32
# convolutions (cuDNN's default), about 1e-3 relative; half precisions keep 8 (bf16) or 11 (fp16)
# mantissa bits through ~20 layers.
TOLERANCE = {"fp32": 3e-3, "fp16": 1e-2, "bf16": 3e-2}


def _photo(h: int = 160, w: int = 224) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([xx, yy, 1 - xx * yy], -1) + 0.1 * rng.standard_normal((h, w, 3))
    return img.clip(0, 1).astype(np.float32)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("method", METHODS)
def test_the_pipeline_on_cuda_gives_the_cpu_picture(method, precision):
    model = bench_model(method, 0.5, CPU)
    style = _photo(128, 128)[::-1].copy() if method in ("msgnet", "adain") else None
    image = _photo()
    want = Stylizer(model, device="cpu", precision="fp32").run(image, style_image=style)
    got = Stylizer(model, device="cuda", precision=precision).run(image, style_image=style)
    assert got.shape == want.shape and np.isfinite(got).all()
    assert float(np.abs(got - want).mean()) < TOLERANCE[precision]
    # Tiled inference on the GPU matches the untiled GPU result away from nothing: same picture.
    tiled = Stylizer(model, device="cuda", precision=precision).run(image, style_image=style, tile=96, overlap=16)
    assert float(np.abs(tiled - got).mean()) < 2 * TOLERANCE[precision] + 5e-3


# Every variant on ulyanov; the uncompiled ones (compiling takes ~30 s each) on the multi-style nets.
CASES = [("ulyanov", v) for v in CUDA_VARIANTS.split(",")] + [
    (m, v) for m in ("dumoulin", "msgnet", "adain") for v in CUDA_VARIANTS.split(",") if "compile" not in v]


@pytest.mark.parametrize(("method", "variant"), CASES)
def test_every_cuda_bench_variant_matches_eager_fp32(method, variant):
    torch._dynamo.reset()
    model = bench_model(method, 0.5, CUDA)
    x = torch.rand(1, 3, 128, 128, device=CUDA, generator=torch.Generator(CUDA).manual_seed(0))
    with torch.no_grad():
        want = model(x, **model_kwargs(model)).float()
    fn = make_runner(model, variant, CUDA, 128)
    for _ in range(3):  # compiled and captured paths differ between their first and later calls
        got = fn(x).float()
    assert got.shape == want.shape and torch.isfinite(got).all()
    tol = TOLERANCE["bf16"] if "bf16" in variant else TOLERANCE["fp32"]
    # Compare the pixels a user gets (the pipeline clamps to [0, 1]).
    diff = (got.clamp(0, 1) - want.clamp(0, 1)).abs().mean().item()
    assert diff < tol, f"{method} {variant}: mean |Δ| {diff:.2e} ≥ {tol:.0e}"


def _losses(folder) -> list[float]:
    with (folder / "losses.csv").open() as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("flags", [["--precision", "bf16", "--channels-last"], ["--precision", "fp16"], ["--compile"]],
                         ids=["bf16-channels_last", "fp16", "compile"])
def test_training_on_cuda_lowers_the_loss(flags, train_data, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "fauve.cli", "train", "ulyanov", "--content", str(train_data["content"]), "--style",
           str(train_data["style"]), "-o", str(out), "--iters", "60", "--size", "64", "--width", "0.25", "--batch-size", "4",
           "--lr", "1e-3", "--sample-every", "1000", "--device", "cuda", *flags]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    curve = _losses(out)
    assert len(curve) == 60 and all(np.isfinite(curve))
    assert sum(curve[-5:]) / 5 < 0.7 * sum(curve[:5]) / 5, curve
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == "ulyanov"


def test_a_cuda_out_of_memory_is_a_clear_error_and_tiling_then_works(tmp_path):
    # A memory cap on this process (not the card's settings) makes a 4096² untiled run fail for real.
    code = textwrap.dedent("""
        import json, numpy as np, torch
        from fauve.bench import bench_model
        from fauve.errors import OutOfMemory
        from fauve.pipeline import Stylizer
        torch.cuda.set_per_process_memory_fraction(2 * 2**30 / torch.cuda.get_device_properties(0).total_memory)
        s = Stylizer(bench_model("ulyanov", 1.0, torch.device("cpu")), device="cuda", precision="fp32")
        out = {}
        try:
            s.run(np.random.rand(4096, 4096, 3).astype(np.float32))
            out["error"] = None
        except OutOfMemory as err:
            out["error"] = str(err)
        y = s.run(np.random.rand(1024, 1024, 3).astype(np.float32), tile=256)
        out["tiled_ok"] = bool(np.isfinite(y).all()) and y.shape == (1024, 1024, 3)
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["error"] and "--tile" in out["error"], out
    assert out["tiled_ok"]
