"""The onnxruntime backend of the pipeline (``Stylizer(..., backend="onnxruntime")``).

:class:`OnnxRunner` turns the pipeline's :class:`~fauve.pipeline.Conditioning` into the inputs of
the model's ONNX graph (``fauve.export``) and runs it. Sessions are built on first use and cached:
the plain graph (whole images, any size: it mirrors the border margin and rounds the sides itself, so
the pipeline hands it the bare image) from an exported file when one is given, else exported from the
model in memory; the frozen-statistics graph (tiles, padded by the pipeline) always from the model. The pipeline computes
the shared statistics itself (its calibration pass runs in PyTorch) and hands them in per tile.

Runs in fp32 on the CPU (CPUExecutionProvider), or on CUDA when onnxruntime-gpu provides the
CUDAExecutionProvider. AdaIN's regional masks are not part of the graph; the pipeline runs those
in PyTorch.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fauve.errors import FauveError
from fauve.export import OUTPUT_NAME, OnnxGraph, check_graph_inputs, export_onnx, require_onnx
from fauve.models.base import StyleModel

BACKENDS = ("torch", "onnxruntime")


def resolve_backend(name: str | None) -> str:
    name = (name or "torch").lower()
    if name in ("pytorch", "eager"):
        name = "torch"
    if name in ("onnx", "ort"):
        name = "onnxruntime"
    if name not in BACKENDS:
        raise FauveError(f"Unknown backend {name!r}.", f"Use one of {', '.join(BACKENDS)}.", code="bad_option")
    if name == "onnxruntime":
        require_onnx("onnxruntime")
    return name


class OnnxRunner:
    """Runs ``model``'s ONNX graphs with onnxruntime, on ``device`` (cpu, or cuda with onnxruntime-gpu)."""

    def __init__(self, model: StyleModel, device: torch.device | str = "cpu", onnx_path: str | Path | None = None,
                 threads: int | None = None, pads_itself: bool = True) -> None:
        """``pads_itself=False``: the whole-image graph is the network alone, as the PyTorch model (`fauve bench`)."""
        self.ort = require_onnx("onnxruntime")
        self.model = model
        self.device = torch.device(device)
        self.onnx_path = Path(onnx_path) if onnx_path else None
        if self.onnx_path is not None:
            if not self.onnx_path.is_file():
                raise FauveError(f"ONNX file {self.onnx_path} does not exist.", "Export one with: fauve export MODEL --onnx OUT.", code="bad_option")
            check_graph_inputs(self.onnx_path, model)
        self.threads = threads
        self.pads_itself = pads_itself
        self.providers = self._providers()
        self._sessions: dict[bool, Any] = {}
        self._lock = threading.Lock()

    def _providers(self) -> list[str]:
        available = self.ort.get_available_providers()
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in available:
                raise FauveError("The onnxruntime backend on CUDA needs onnxruntime-gpu (this onnxruntime has "
                                 f"{', '.join(available)}).", "pip install onnxruntime-gpu, or use --backend torch on the GPU.",
                                 code="bad_device")
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if self.device.type != "cpu":
            raise FauveError(f"The onnxruntime backend runs on cpu or cuda, not {self.device.type}.", "Use --backend torch.", code="bad_device")
        return ["CPUExecutionProvider"]

    def session(self, frozen_norm: bool = False) -> Any:
        """The cached InferenceSession for the plain (whole-image) or frozen-statistics (tile) graph."""
        with self._lock:
            if frozen_norm not in self._sessions:
                if not frozen_norm and self.onnx_path is not None:
                    source: Any = str(self.onnx_path)
                else:
                    source = export_onnx(self.model, frozen_norm=frozen_norm, pads_itself=self.pads_itself and not frozen_norm)
                options = self.ort.SessionOptions()
                options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                options.intra_op_num_threads = self.threads or torch.get_num_threads()
                options.log_severity_level = 3
                self._sessions[frozen_norm] = self.ort.InferenceSession(source, sess_options=options, providers=self.providers)
            return self._sessions[frozen_norm]

    def feeds(self, x: torch.Tensor, cond: Any, content_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
              norm_stats: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None) -> dict[str, np.ndarray]:
        """The graph's inputs for image ``x`` under conditioning ``cond`` (a pipeline Conditioning)."""
        model, method = self.model, self.model.method
        values: list[torch.Tensor] = [x]
        if method == "dumoulin":
            values.append(cond.style_weights.reshape(1, -1))
        elif method == "msgnet":
            if cond.target_gram is not None:
                values.append(cond.target_gram)
            else:
                w = cond.style_weights.reshape(1, -1).to(model.style_grams)
                values.append(torch.einsum("bn,ncd->bcd", w, model.style_grams))
        elif method == "adain":
            means, stds = cond.style_stats if cond.style_stats is not None else (model.style_means, model.style_stds)
            k = means.shape[0]
            w = cond.style_weights if cond.style_weights is not None else F.one_hot(torch.tensor(0), k)
            w = w.reshape(k).to(means.device, torch.float32)
            values += [(w @ means.float())[None], (w @ stds.float())[None], torch.tensor([float(cond.alpha)])]
        frozen = content_stats is not None or norm_stats is not None
        if frozen and method == "adain":
            values += list(content_stats)
        elif frozen:
            from fauve.export import norm_layers

            for layer in norm_layers(model):
                values += list(norm_stats[id(layer)])
        graph = OnnxGraph(model, frozen_norm=frozen)
        return {name: v.detach().float().contiguous().cpu().numpy() for name, v in zip(graph.input_names(), values)}

    def __call__(self, x: torch.Tensor, cond: Any, content_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
                 norm_stats: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        """Stylize (B, 3, H, W) ``x``; returns a float tensor on ``x``'s device."""
        frozen = content_stats is not None or bool(norm_stats)
        if frozen and self.model.method == "johnson":
            frozen = False  # BatchNorm: no per-image statistics, the plain graph is the tile graph
        feeds = self.feeds(x, cond, content_stats if frozen else None, norm_stats if frozen else None)
        out = self.session(frozen).run([OUTPUT_NAME], feeds)[0]
        return torch.from_numpy(out).to(x.device)
