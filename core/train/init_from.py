"""Start a run from a trained model's weights (``fauve train … --init MODEL``), i.e. fine-tuning.

A generator that already encodes, decodes and paints learns a new style in far fewer steps than one
from random weights, which is what makes a set of styles affordable on a CPU. Allowed pairs:

- the same method (johnson/ulyanov/dumoulin/msgnet/adain): every tensor is copied; the style-specific
  rows of a dumoulin or msgnet model must match the new run's number of styles;
- ulyanov → dumoulin: every conv is copied and each instance norm's affine (γ, β) fills every style's
  row of the conditional instance norm, so all styles start from the single-style model;
- dumoulin → ulyanov: every conv is copied and the row of the run's style (matched by name: the painting's
  file stem) fills each instance norm's affine, so the run starts exactly at that style of the multi-style
  model (Dumoulin et al.'s point: a CIN net is N IN nets sharing their convolutions).

The architecture (width, upsampling, residual output) is taken from MODEL, not from the flags, except
that ``--upsample nearest|bilinear`` may switch a resize-conv model to the other resize (same weights),
and that ``--width`` below MODEL's (johnson, ulyanov, dumoulin; same method) prunes it: each layer keeps
its channels with the largest normalisation scale (``fauve.train.prune``).
"""

from __future__ import annotations

import torch

from fauve.errors import FauveError
from fauve.models import StyleModel, load_model

_PAIRS = {("ulyanov", "dumoulin"), ("dumoulin", "ulyanov")}


def style_row(model: StyleModel, style: str, option: str) -> int:
    """The row of ``style`` (a painting's file stem) in a multi-style ``model`` named by ``option`` (--init, --teacher)."""
    if style not in model.style_names:
        raise FauveError(f"{option} has no style {style!r} (its styles: {', '.join(model.style_names)}).",
                         "Pass one of its paintings as --style (the file name picks the row), or a ulyanov model.")
    return list(model.style_names).index(style)


def init_from(cfg, method) -> StyleModel:
    """Build ``method``'s model with ``cfg.init_from``'s weights; sets ``cfg``'s architecture fields to MODEL's."""
    try:
        old = load_model(cfg.init_from)
    except FauveError:
        raise
    except Exception as exc:  # noqa: BLE001 (a folder that is not a fauve model)
        raise FauveError(f"--init {cfg.init_from} is not a fauve model folder ({exc}).",
                         "Pass a folder written by `fauve train` (config.json + model.safetensors).") from exc
    if old.method != cfg.method and (old.method, cfg.method) not in _PAIRS:
        raise FauveError(f"Cannot start a {cfg.method} run from a {old.method} model.",
                         "Use a model of the same method, a ulyanov model for a dumoulin run, or a dumoulin model for a ulyanov run.")
    arch = old.hub_config()
    if old.method == "adain" and cfg.adain_layer != arch.get("layer", "relu4_1"):
        raise FauveError(f"--init {cfg.init_from} has AdaIN at {arch.get('layer', 'relu4_1')}, this run at {cfg.adain_layer}.",
                         f"Drop --layer (the run takes the model's) or pass --layer {arch.get('layer', 'relu4_1')}.")
    resizes = {"nearest", "bilinear"}
    prune_to = cfg.width if cfg.width is not None and cfg.width != arch.get("width") else None
    if prune_to is not None and (old.method != cfg.method or cfg.method not in ("johnson", "ulyanov", "dumoulin")
                                 or prune_to > arch.get("width", 1.0)):
        raise FauveError(f"--width {prune_to:g} does not fit --init {cfg.init_from} (a {old.method} model of width {arch.get('width', 1.0):g}).",
                         "Pruning makes a johnson, ulyanov or dumoulin model slimmer, within the same method; "
                         "drop --width to keep the model's.")
    for key in ("width", "upsample", "residual_output", "norm"):
        if key == "width" and prune_to is not None:
            continue
        if key == "upsample" and {cfg.upsample, arch.get(key)} <= resizes:
            continue  # the same weights serve either resize, so --upsample may switch it
        if key in arch:
            setattr(cfg, key, arch[key])
    if cfg.width is None:
        cfg.width = 1.0
    if cfg.upsample is None:  # a model saved before upsample was recorded (adain, msgnet): nearest
        cfg.upsample = "nearest"
    model = method.build()
    state = {k: v.float() for k, v in old.state_dict().items()}
    target = model.state_dict()
    if prune_to is not None:
        from fauve.train.prune import prune_state

        state = prune_state(state, target)
        cfg.pruned_from_width = arch.get("width", 1.0)
    if old.method == "ulyanov" and cfg.method == "dumoulin":
        for name, tensor in list(state.items()):
            prefix, _, leaf = name.rpartition(".")
            if leaf in ("weight", "bias") and f"{prefix}.gamma" in target and tensor.dim() == 1:
                row = "gamma" if leaf == "weight" else "beta"
                state[f"{prefix}.{row}"] = tensor.unsqueeze(0).expand_as(target[f"{prefix}.{row}"]).clone()
                del state[name]
    if old.method == "dumoulin" and cfg.method == "ulyanov":
        row = style_row(old, method.style_names[0], f"--init {cfg.init_from}")
        cfg.init_style = method.style_names[0]
        for name, tensor in list(state.items()):
            prefix, _, leaf = name.rpartition(".")
            if leaf in ("gamma", "beta") and f"{prefix}.weight" in target:
                state[f"{prefix}.{'weight' if leaf == 'gamma' else 'bias'}"] = tensor[row].clone()
                del state[name]
    # Statistics of the named styles (adain, msgnet) are recomputed from this run's paintings at export.
    recomputed = type(model).style_buffers
    for name in recomputed:
        state.pop(name, None)
    mismatched = [k for k in target if k in state and state[k].shape != target[k].shape]
    missing = [k for k in target if k not in state and k not in recomputed]
    if mismatched or missing:
        raise FauveError(f"--init {cfg.init_from} does not fit this run: "
                         f"{len(mismatched)} tensors differ in shape (e.g. {(mismatched or missing)[0]}), {len(missing)} are missing.",
                         "Start from a model with the same number of styles, or train from scratch without --init.")
    with torch.no_grad():
        model.load_state_dict(state, strict=False)
    return model
