"""ONNX export of the feed-forward networks (``fauve export MODEL --onnx OUT``).

An ONNX graph cannot take Python options, so each method's conditioning becomes explicit tensor
inputs (:data:`GRAPH_INPUTS`); height and width (and the batch) are dynamic:

=========  ===========================================================================
johnson    ``image``                                   (B, 3, H, W) RGB in [0, 1]
ulyanov    ``image``
dumoulin   ``image``, ``style_weights`` (1, N)         weights over the N trained styles
msgnet     ``image``, ``target_gram`` (1, C, C)        Gram matrix of the style features
adain      ``image``, ``style_mean``, ``style_std`` (1, C), ``alpha`` (1,)  C = 512 (relu4_1) or 256 (relu3_1)
=========  ===========================================================================

The output ``stylized`` is (B, 3, H, W), unclamped, like the PyTorch model's. The graph takes any height
and width and does what fauve's pipeline does around the network: it mirrors the model's
``border_margin`` (16 px for adain, whose zero-padded VGG encoder would paint a fringe along the
borders; 0 for the generators) on every side, rounds the sides up to the model's ``size_multiple`` (4;
8 for adain at relu4_1) by mirroring too, and crops the result back to H × W. So the file alone gives
the pipeline's picture (reflection needs sides over the padding: > 16 px for adain, ≥ 4 px for the
others). The file's metadata says so (``fauve.pads_itself`` = 1, ``fauve.border_margin``,
``fauve.size_multiple``, ``fauve.method``). For msgnet the Gram of
a style image is ``model.style_gram(img)`` (or the stored ``style_grams[i]``); for adain the
statistics are ``model.style_stats(img)`` (or ``style_means[i]``, ``style_stds[i]``).

A second form of each graph, ``frozen_norm=True``, takes the mean and variance of every
instance-norm layer as inputs (``norm{i}_mean``, ``norm{i}_var``; adain: ``content_mean``,
``content_std`` at the AdaIN layer). The pipeline uses it to run tiles with statistics shared over the
whole image (see ``fauve.pipeline``), so tiled onnxruntime output matches tiled PyTorch output. It is
the network alone: tiles come padded by the pipeline, sides a multiple of ``size_multiple``.

Exported with PyTorch's TorchScript-based exporter (``dynamo=False``: needs only ``onnx``, and its
tracing keeps H and W symbolic). Checked against PyTorch in tests/test_export.py (max abs
difference ≤ 1e-4 on outputs in [0, 1]).
"""

from __future__ import annotations

import argparse
import io
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fauve.errors import FauveError, ModelFileError
from fauve.models.base import StyleModel
from fauve.models.layers import mean_std
from fauve.pipeline import margin_padding

PADS_ITSELF_KEY = "fauve.pads_itself"
DEFAULT_OPSET = 17
OUTPUT_NAME = "stylized"
GRAPH_INPUTS: dict[str, tuple[str, ...]] = {
    "johnson": ("image",),
    "ulyanov": ("image",),
    "dumoulin": ("image", "style_weights"),
    "msgnet": ("image", "target_gram"),
    "adain": ("image", "style_mean", "style_std", "alpha"),
}


def require_onnx(module: str = "onnx") -> Any:
    """Import ``onnx`` or ``onnxruntime``, or say how to install it."""
    try:
        return __import__(module)
    except ImportError as err:
        raise FauveError(f"{module} is not installed.", "Install the ONNX extra: pip install 'fauve[onnx]'.", code="missing_dependency") from err


def norm_layers(model: nn.Module) -> list[nn.Module]:
    """The instance-norm layers whose statistics the frozen graph takes as inputs, in the order of
    ``fauve.pipeline.SharedNormStats(model).layers``."""
    from fauve.pipeline import SharedNormStats

    return SharedNormStats(model).layers


class OnnxGraph(nn.Module):
    """``model`` with its conditioning as explicit tensor inputs (see the module docstring)."""

    def __init__(self, model: StyleModel, frozen_norm: bool = False, pads_itself: bool | None = None) -> None:
        super().__init__()
        if model.method not in GRAPH_INPUTS:
            raise FauveError(f"Cannot export a {model.method!r} model to ONNX.", f"Export one of {', '.join(GRAPH_INPUTS)}.", code="bad_option")
        self.model = model
        self.frozen_norm = frozen_norm
        # The whole-image graph mirrors the margin itself; tiles come padded (and `fauve bench` times the network alone).
        self.pads_itself = not frozen_norm if pads_itself is None else pads_itself
        self.num_norm = 0 if model.method == "adain" else len(norm_layers(model))

    @property
    def method(self) -> str:
        return self.model.method

    def input_names(self) -> list[str]:
        names = list(GRAPH_INPUTS[self.method])
        if self.frozen_norm:
            if self.method == "adain":
                names += ["content_mean", "content_std"]
            else:
                names += [f"norm{i}_{kind}" for i in range(self.num_norm) for kind in ("mean", "var")]
        return names

    def example_inputs(self, height: int = 64, width: int = 64) -> tuple[torch.Tensor, ...]:
        """Inputs of the right shapes (the named styles' conditioning) for tracing and tests."""
        model = self.model
        image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
        extra: list[torch.Tensor] = []
        if self.method == "dumoulin":
            extra.append(torch.full((1, model.num_styles), 1.0 / model.num_styles))
        elif self.method == "msgnet":
            extra.append(model.style_grams[:1].clone())
        elif self.method == "adain":
            extra += [model.style_means[:1].clone(), model.style_stds[:1].clone(), torch.ones(1)]
        if self.frozen_norm:
            if self.method == "adain":
                extra += [torch.zeros_like(model.style_means[0]), torch.ones_like(model.style_stds[0])]
            else:
                from fauve.pipeline import SharedNormStats

                shared = SharedNormStats(model)
                with shared, torch.no_grad():  # record real statistics so the traced graph sees sane values
                    self._call_model(image, extra[: len(GRAPH_INPUTS[self.method]) - 1])
                for layer in shared.layers:
                    extra += list(shared.stats[id(layer)])
        return (image, *extra)

    def _call_model(self, image: torch.Tensor, cond: list[torch.Tensor]) -> torch.Tensor:
        if self.method == "dumoulin":
            return self.model(image, style_weights=cond[0])
        if self.method == "msgnet":
            return self.model(image, target_gram=cond[0])
        return self.model(image)

    def forward(self, image: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
        if not self.pads_itself:
            return self._network(image, *inputs)
        b, h, w = self.model.border_margin, image.shape[-2], image.shape[-1]
        padded = torch.nn.functional.pad(image, margin_padding(h, w, self.model.size_multiple, b), mode="reflect")
        return self._network(padded, *inputs)[..., b:b + h, b:b + w]

    def _network(self, image: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
        n_cond = len(GRAPH_INPUTS[self.method]) - 1
        cond, stats = list(inputs[:n_cond]), list(inputs[n_cond:])
        if self.method == "adain":
            return self._adain(image, *cond, *stats)
        if not self.frozen_norm:
            return self._call_model(image, cond)
        from fauve.pipeline import SharedNormStats

        shared = SharedNormStats(self.model)
        shared.mode = "frozen"
        shared.stats = {id(layer): (stats[2 * i], stats[2 * i + 1]) for i, layer in enumerate(shared.layers)}
        with shared:
            return self._call_model(image, cond)

    def _adain(self, image: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor, alpha: torch.Tensor,
               content_mean: torch.Tensor | None = None, content_std: torch.Tensor | None = None) -> torch.Tensor:
        """AdaINNet.forward for one (mixed) style: t = α·(σ_s·(f − μ_c)/σ_c + μ_s) + (1 − α)·f."""
        content = self.model.encode(image)[self.model.layer]
        if content_mean is None:
            mean_c, std_c = mean_std(content)
        else:
            mean_c, std_c = content_mean.view(1, -1, 1, 1), content_std.view(1, -1, 1, 1)
        t = style_std.view(1, -1, 1, 1) * (content - mean_c) / std_c + style_mean.view(1, -1, 1, 1)
        t = alpha.view(1, 1, 1, 1) * t + (1.0 - alpha.view(1, 1, 1, 1)) * content
        return self.model.decoder(t)


def export_onnx(model: StyleModel, out: str | Path | None = None, *, opset: int = DEFAULT_OPSET,
                frozen_norm: bool = False, pads_itself: bool | None = None) -> bytes:
    """Export ``model`` (on the CPU, fp32) to ONNX; write it to ``out`` if given; return the bytes.
    ``pads_itself`` (default: the whole-image graph does, the tile graph does not): see the module docstring."""
    require_onnx("onnx")
    graph = OnnxGraph(_cpu_fp32_copy(model), frozen_norm=frozen_norm, pads_itself=pads_itself).eval()
    names = graph.input_names()
    dynamic = {"image": {0: "batch", 2: "height", 3: "width"}, OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic and constant folding
        torch.onnx.export(graph, graph.example_inputs(), buffer, input_names=names, output_names=[OUTPUT_NAME],
                          dynamic_axes=dynamic, opset_version=opset, do_constant_folding=True, dynamo=False)
    onnx = require_onnx("onnx")
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {"fauve.method": model.method, PADS_ITSELF_KEY: str(int(graph.pads_itself)),
                                        "fauve.border_margin": str(model.border_margin), "fauve.size_multiple": str(model.size_multiple)})
    data = proto.SerializeToString()
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
    return data


def _cpu_fp32_copy(model: StyleModel) -> StyleModel:
    """The model on the CPU in fp32, contiguous (a copy only when the model is elsewhere)."""
    first = next(model.parameters(), None)
    if first is not None and first.device.type == "cpu" and first.dtype == torch.float32 and \
            all(p.is_contiguous() for p in model.parameters()):
        return model.eval()
    import copy

    clone = copy.deepcopy(model).to("cpu", torch.float32)
    clone = clone.to(memory_format=torch.contiguous_format)
    return clone.eval()


def check_graph_inputs(path: str | Path, model: StyleModel, frozen_norm: bool = False) -> None:
    """Raise ModelFileError when an ONNX file's inputs are not those of ``model``'s graph."""
    onnx = require_onnx("onnx")
    proto = onnx.load(str(path), load_external_data=False)
    got = [i.name for i in proto.graph.input]
    want = OnnxGraph(model, frozen_norm=frozen_norm).input_names()
    if got != want:
        raise ModelFileError(f"{path} takes inputs {got}, but a {model.method} model's graph takes {want}.",
                             "Export it again from this model: fauve export MODEL --onnx OUT.")
    props = {p.key: p.value for p in proto.metadata_props}
    if props.get(PADS_ITSELF_KEY) != str(int(not frozen_norm)):
        raise ModelFileError(f"{path} was exported by an older fauve: its graph leaves the border margin and the size "
                             "rounding to the caller.", "Export it again: fauve export MODEL --onnx OUT.")


# -- the CLI --------------------------------------------------------------------------------------
def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="export a model to ONNX",
                            description="Export a fauve model folder or Hub repo to ONNX (dynamic height and width). "
                            "Inputs per method: " + "; ".join(f"{m}: {', '.join(v)}" for m, v in GRAPH_INPUTS.items()) + ".")
    parser.add_argument("model", help="model folder or Hub repo id")
    parser.add_argument("--onnx", required=True, metavar="OUT", help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET}; 11 or later)")
    parser.add_argument("--frozen-norm", action="store_true",
                        help="the tiling form: instance-norm statistics as inputs (what the pipeline runs on tiles)")
    parser.add_argument("--no-check", action="store_true", help="skip comparing the ONNX output with PyTorch's")
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from fauve.models import load_model

    if args.opset < 11:
        raise FauveError(f"Opset {args.opset} is too old (reflection padding and resizing need 11).", "Use --opset 17.", code="bad_option")
    model = load_model(args.model).eval()
    data = export_onnx(model, args.onnx, opset=args.opset, frozen_norm=args.frozen_norm)
    line = f"wrote {args.onnx} ({len(data) / 1e6:.1f} MB, opset {args.opset}; inputs: {', '.join(OnnxGraph(model, args.frozen_norm).input_names())})"
    if not args.no_check:
        diff = compare_with_torch(model, data, frozen_norm=args.frozen_norm)
        line += f"; max |onnxruntime − PyTorch| = {diff:.2e} at 64×96"
    if not args.frozen_norm:
        line += "; takes any height and width (the graph mirrors the border margin and rounds the sides itself)"
    print(line)
    return 0


def compare_with_torch(model: StyleModel, onnx_bytes: bytes, *, frozen_norm: bool = False, height: int = 64, width: int = 96) -> float:
    """Max absolute difference between onnxruntime and PyTorch on one input."""
    ort = require_onnx("onnxruntime")
    graph = OnnxGraph(_cpu_fp32_copy(model), frozen_norm=frozen_norm).eval()
    inputs = graph.example_inputs(height, width)
    with torch.no_grad():
        expected = graph(*inputs)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {n: t.numpy() for n, t in zip(graph.input_names(), inputs)})[0]
    return float((torch.from_numpy(got) - expected).abs().max())
