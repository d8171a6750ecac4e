#!/usr/bin/env python
"""Would onnxruntime's static int8 quantization meet the CPU speed target? (docs/perf/cpu-int8-probe.md)

Exports a shipped model to ONNX (fauve.export), quantizes it with onnxruntime.quantization
(QOperator, per-channel s8 weights, u8 activations calibrated on four Kodak photos at 384×256;
once only the convolutions, once every op onnxruntime quantizes) and times each graph at 1024²
against the fp32 graph, with the mean absolute pixel difference from it.

    python scripts/experiments/int8-probe.py hub_models/dumoulin-16 --threads 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

from fauve.export import OnnxGraph, export_onnx
from fauve.models import load_model

DATA = Path(os.environ.get("FAUVE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=1024)
    args = ap.parse_args()
    model = load_model(args.model).float().eval()
    names = OnnxGraph(model).input_names()
    photos = [np.asarray(Image.open(DATA / "content-eval" / f"kodim{i:02d}.png").convert("RGB").resize((384, 256)), np.float32)
              .transpose(2, 0, 1)[None] / 255 for i in (1, 5, 15, 23)]

    def conditioning(k: int) -> dict[str, np.ndarray]:
        if model.method != "dumoulin":
            return {}
        w = np.zeros((1, model.num_styles), np.float32)
        w[0, k % model.num_styles] = 1
        return {names[1]: w}

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{names[0]: p, **conditioning(i)} for i, p in enumerate(photos)])

        def get_next(self):
            return next(self.feeds, None)

    tmp = Path(tempfile.mkdtemp(prefix="fauve-int8-"))
    os.chdir(tmp)  # onnxruntime's shape inference leaves scratch files (sym_shape_infer_temp.onnx, *.data) in the working folder
    graphs = {"fp32": tmp / "fp32.onnx"}
    graphs["fp32"].write_bytes(export_onnx(model))
    quant_pre_process(str(graphs["fp32"]), str(tmp / "pre.onnx"), skip_symbolic_shape=True)
    for tag, ops in (("int8 conv", ["Conv"]), ("int8 all", None)):
        graphs[tag] = tmp / f"{tag.replace(' ', '-')}.onnx"
        quantize_static(str(tmp / "pre.onnx"), str(graphs[tag]), Photos(), quant_format=QuantFormat.QOperator, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=ops)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.log_severity_level = 3
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    feed = {names[0]: x, **conditioning(0)}
    reference = None
    for tag, path in graphs.items():
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        session.run(None, feed)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            y = session.run(None, feed)[0]
            times.append(time.perf_counter() - t0)
        reference = y if reference is None else reference
        print(f"{args.model} {tag}: {args.size}² median {np.median(times):.3f} s, mean |Δ| from fp32 {float(np.abs(y - reference).mean()):.4f}", flush=True)


if __name__ == "__main__":
    main()
