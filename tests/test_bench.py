"""``fauve bench``: every variant computes the same picture; the reports are complete. No timings
are asserted (speed is what the benchmark reports, never what a test checks)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fauve import bench, cli
from fauve.bench import MemoryProbe, bench_large, bench_model, make_runner, parse_variant
from fauve.errors import FauveError

CPU = torch.device("cpu")
METHODS = ["johnson", "ulyanov", "dumoulin", "msgnet", "adain"]
# Errors relative to the reference output's range. fp32 paths differ only in the order of
# operations; bf16 keeps 8 bits of mantissa (measured on these tiny untrained models: mean ≤ 1.2%,
# max ≤ 8% of the range, msgnet the worst).
TOLERANCE = {"inference_mode": 1e-5, "channels_last": 1e-4, "onnxruntime": 1e-4, "compile": 1e-4, "bf16": 0.15}
BF16_MEAN_TOLERANCE = 0.02


def bench_cli(argv: list[str]) -> int:
    return cli.main(["bench", *argv])


def relative_error(a: torch.Tensor, b: torch.Tensor, reduce=torch.max) -> float:
    b = b.float()
    return float(reduce((a.float() - b).abs()) / (b.max() - b.min()).clamp_min(1e-6))


@pytest.mark.parametrize("method", METHODS)
def test_every_cpu_variant_gives_the_same_picture(method):
    model = bench_model(method, 0.125, CPU, num_styles=2)
    x = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(1))
    reference = make_runner(model, "eager", CPU, 48)(x).detach().clone()
    assert reference.std() > 0
    for variant in ("inference_mode", "channels_last", "bf16", "onnxruntime"):
        got = make_runner(model, variant, CPU, 48)(x)
        assert got.shape == reference.shape
        assert relative_error(got, reference) < TOLERANCE[variant], variant
        if variant == "bf16":
            assert relative_error(got, reference, torch.mean) < BF16_MEAN_TOLERANCE


@pytest.mark.slow
def test_torch_compile_gives_the_same_picture():
    model = bench_model("ulyanov", 0.125, CPU)
    x = torch.rand(1, 3, 32, 32)
    reference = make_runner(model, "eager", CPU, 32)(x).clone()
    try:
        assert relative_error(make_runner(model, "compile", CPU, 32)(x), reference) < TOLERANCE["compile"]
    finally:
        torch._dynamo.reset()


def test_variant_flags_are_checked():
    assert parse_variant("bf16+channels_last+compile") == {"bf16", "channels_last", "compile"}
    with pytest.raises(FauveError, match="Unknown variant"):
        parse_variant("bf16+turbo")
    with pytest.raises(FauveError, match="of its own"):
        parse_variant("onnxruntime+bf16")
    with pytest.raises(FauveError, match="CUDA"):
        make_runner(bench_model("ulyanov", 0.125, CPU), "cudagraphs", CPU, 32)


def test_memory_probe_sees_an_allocation_and_resets():
    probe = MemoryProbe(CPU)
    probe.reset()
    block = np.ones(48 * 2**20 // 8)  # 48 MiB, touched
    assert probe.peak_mb() >= 40
    del block
    probe.reset()
    assert probe.peak_mb() < 40 or not probe.exact


def test_bench_cli_writes_markdown_and_json_with_the_baseline(tmp_path, capsys):
    code = bench_cli(["--methods", "dumoulin", "--width", "0.125", "--sizes", "32,48", "--variants", "eager,onnxruntime",
                      "--repeat", "2", "--min-runs", "1", "--budget", "0", "-o", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "bench-inference.json").read_text())
    rows = report["rows"]
    assert [(r["method"], r["width"], r["variant"]) for r in rows[:2]] == [("ulyanov", 1.0, "eager")] * 2  # baseline first
    assert {(r["variant"], r["size"]) for r in rows if r["method"] == "dumoulin"} == {(v, s) for v in ("eager", "onnxruntime") for s in (32, 48)}
    for r in rows:
        assert r["error"] is None and r["latency_ms"] > 0 and r["first_call_s"] > 0 and r["runs"] >= 1
        assert r["ratio"] > 0 and r["load_before"] is not None
    assert all(r["ratio"] == 1.0 for r in rows[:2])
    assert report["hardware"]["cpu_count"] >= 1 and report["hardware"]["torch"] == torch.__version__
    table = (tmp_path / "bench-inference.md").read_text()
    assert table.count("| dumoulin | 0.125 |") == 4 and "× baseline" in table
    assert "| dumoulin | 0.125 | onnxruntime | 48² |" in capsys.readouterr().out


def test_bench_train_times_the_training_step(tmp_path):
    assert bench_cli(["--train", "--methods", "ulyanov,adain", "--width", "0.125", "--sizes", "32", "--batch", "2",
                      "--repeat", "2", "--min-runs", "1", "-o", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "bench-train.json").read_text())["rows"]
    assert [(r["method"], r["size"], r["error"]) for r in rows] == [("ulyanov", 32, None), ("adain", 32, None)]
    assert all(r["fps"] > 0 for r in rows)
    assert "it/s" in (tmp_path / "bench-train.md").read_text()


def test_bench_large_runs_the_tiled_pipeline_in_a_fresh_process():
    rows = bench_large("ulyanov", 0.125, [320], tile=128, log=lambda _: None)
    (row,) = rows
    assert row.error is None, row.error
    assert row.latency_ms > 0 and row.peak_mb > row.extra["rss_before_mb"] > 0
    assert row.extra["s_per_mpix"] > 0


def test_unknown_method_is_a_clear_error(capsys):
    assert bench_cli(["--methods", "picasso"]) == 2
    assert "Unknown method" in capsys.readouterr().err


def test_bench_times_bilinear_models_as_shipped(tmp_path):
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    nearest = make_runner(bench_model("ulyanov", 0.125, CPU), "eager", CPU, 32)(x).clone()
    bilinear_model = bench_model("ulyanov", 0.125, CPU, upsample="bilinear")
    bilinear = make_runner(bilinear_model, "eager", CPU, 32)(x)
    assert relative_error(make_runner(bilinear_model, "onnxruntime", CPU, 32)(x), bilinear) < TOLERANCE["onnxruntime"]
    assert relative_error(bilinear, nearest, torch.mean) > 1e-3  # same weights, a different resize: a different picture
    with pytest.raises(FauveError, match="msgnet has no --upsample"):
        bench_model("msgnet", 0.125, CPU, upsample="bilinear")

    assert bench_cli(["--methods", "ulyanov,msgnet", "--width", "0.125", "--sizes", "32", "--variants", "eager",
                      "--upsample", "nearest,bilinear", "--repeat", "1", "--min-runs", "1", "--budget", "0", "-o", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "bench-inference.json").read_text())["rows"]
    assert [(r["method"], r["width"], r["upsample"]) for r in rows] == [
        ("ulyanov", 1.0, "nearest"), ("ulyanov", 0.125, "nearest"), ("ulyanov", 0.125, "bilinear"), ("msgnet", 0.125, "nearest")]
    assert all(r["error"] is None and r["ratio"] > 0 for r in rows)
    assert "| ulyanov · bilinear | 0.125 | eager | 32² |" in (tmp_path / "bench-inference.md").read_text()
    assert bench_cli(["--methods", "ulyanov", "--upsample", "bicubic"]) == 2
