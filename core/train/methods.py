"""What each method contributes to the one training loop: its model, its loss, its style picking.

Defaults follow each paper (see docs/training.md for the paper's values and where ours differ):
all perceptual losses here are normalised by their targets' energy (fauve.losses), so the weights
are relative and independent of the VGG16 weight source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from fauve import losses
from fauve.errors import FauveError
from fauve.models import StyleModel, build_model, load_model
from fauve.models.adain import AdaINNet, encoder_taps
from fauve.models.layers import adain, mean_std
from fauve.train.defaults import DEFAULTS, MethodDefaults  # noqa: F401 - re-exported
from fauve.train.init_from import style_row
from fauve.vgg import VGG16Features

@dataclass
class StepOutput:
    loss: torch.Tensor
    parts: dict[str, torch.Tensor]  # detached scalars; read them in bulk (.item() per step stalls a GPU)
    output: torch.Tensor


def _lattice_shift(seed: int, step: int) -> tuple[int, int]:
    """The step's (dy, dx) for the shift-equivariance loss: deterministic, under 8 px, and not a multiple
    of 4 px on both axes (such a shift would not move the 2 and 4 px lattices against the photo)."""
    gen = torch.Generator().manual_seed(seed * 49_979_687 + step)
    while True:
        dy, dx = torch.randint(0, losses.LATTICE_PERIOD, (2,), generator=gen).tolist()
        if dy % 4 or dx % 4:
            return dy, dx


def _add_artifact_penalties(cfg, total: torch.Tensor, parts: dict, output: torch.Tensor, photo: torch.Tensor,
                            forward: Callable[[torch.Tensor], torch.Tensor] | None, step: int) -> tuple[torch.Tensor, dict]:
    """Add ``--lattice-weight`` × the grid-pattern penalty, ``--stripe-weight`` × the stripe penalty and
    ``--shift-weight`` × the shift-equivariance loss when asked for; ``forward`` runs the model with this
    batch's styles on another crop."""
    if cfg.lattice_weight:
        lattice = losses.lattice_penalty(output, photo)
        total, parts = total + cfg.lattice_weight * lattice, {**parts, "lattice": lattice.detach()}
    if cfg.stripe_weight:
        stripes = losses.stripe_penalty(output, photo)
        total, parts = total + cfg.stripe_weight * stripes, {**parts, "stripes": stripes.detach()}
    if cfg.shift_weight:
        if forward is None:
            raise ValueError("--shift-weight needs the model's forward pass for the step's styles")
        moved = losses.shift_equivariance_loss(forward, photo, output, _lattice_shift(cfg.seed, step))
        total, parts = total + cfg.shift_weight * moved, {**parts, "shift": moved.detach()}
    return total, parts


class Method:
    """A training method: builds the model and computes the loss of one batch."""

    name = ""
    # Set by fauve.train.add_style when a run extends a dumoulin model: the model's row of each of this
    # run's styles, the model's number of styles, and every style's painting file.
    style_rows: list[int] | None = None
    total_styles: int | None = None
    style_sources: list[str] | None = None
    teacher_methods: tuple[str, ...] = ()  # which trained models ``--teacher`` may name (set per method)

    def __init__(self, cfg, styles: list[torch.Tensor], style_names: list[str], device: torch.device) -> None:
        self.cfg = cfg
        self.styles = styles
        self.style_names = style_names
        self.device = device
        taps = cfg.content_layers + cfg.style_layers + (losses.DISTILL_LAYERS if getattr(cfg, "teacher", None) else ())
        self.vgg = VGG16Features(taps=tuple(dict.fromkeys(taps)), source=cfg.vgg_source).to(device)

    def build(self) -> StyleModel:
        raise NotImplementedError

    def _load_teacher(self) -> StyleModel:
        try:
            teacher = load_model(self.cfg.teacher)
        except FauveError:
            raise
        except Exception as exc:  # noqa: BLE001 (a folder that is not a fauve model)
            raise FauveError(f"--teacher {self.cfg.teacher} is not a fauve model folder ({exc}).",
                             "Pass a folder written by `fauve train` (config.json + model.safetensors).") from exc
        if teacher.method not in self.teacher_methods:
            raise FauveError(f"--teacher {self.cfg.teacher} is a {teacher.method} model; a {self.name} run distils from "
                             f"{' or '.join(self.teacher_methods)}.", f"Distil from a {' or '.join(self.teacher_methods)} model.")
        self.teacher_rows = None
        if self.name == "ulyanov" and teacher.method == "dumoulin":
            self.teacher_rows = [style_row(teacher, self.style_names[0], f"--teacher {self.cfg.teacher}")]
        elif list(teacher.style_names) != list(self.style_names):
            raise FauveError(f"--teacher {self.cfg.teacher} has the styles {list(teacher.style_names)}, this run {list(self.style_names)}.",
                             "Pass the teacher's paintings in its order (its config.json style_sources).")
        teacher = teacher.float().eval().to(self.device)
        teacher.requires_grad_(False)
        return teacher

    def pick_styles(self, step: int, batch: int) -> torch.Tensor:
        """Style index of each sample of the batch at ``step`` (deterministic)."""
        n = len(self.styles)
        gen = torch.Generator().manual_seed(self.cfg.seed * 104_729 + step)
        return torch.randint(0, n, (batch,), generator=gen)

    def loss(self, model: torch.nn.Module, content: torch.Tensor, step: int) -> StepOutput:
        raise NotImplementedError

    def perceptual(self, output: torch.Tensor, content: torch.Tensor, target_grams: dict[str, torch.Tensor],
                   teacher_output: torch.Tensor | None = None, forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   step: int = 0) -> StepOutput:
        """The step's loss of ``output`` (the model's picture of ``content``); ``forward`` (the model with the step's
        styles) is needed only with ``--shift-weight``."""
        cfg = self.cfg
        if cfg.distill_only:
            # The teacher's picture is the only target: no content or style loss, and VGG runs only to relu3_3.
            with torch.no_grad():
                teacher_feats = self.vgg(teacher_output, losses.DISTILL_LAYERS)
            distill = losses.distillation_loss(output, teacher_output, self.vgg(output, losses.DISTILL_LAYERS), teacher_feats)
            tv = losses.total_variation(output)
            nan = torch.full((), float("nan"), device=output.device)
            parts = {"content": nan, "style": nan, "tv": tv.detach(), "distill": distill.detach()}
            total, parts = _add_artifact_penalties(cfg, cfg.distill_weight * distill + cfg.tv_weight * tv, parts, output, content, forward, step)
            return StepOutput(total, parts, output)
        with torch.no_grad():
            content_feats = self.vgg(content, cfg.content_layers)
            teacher_feats = self.vgg(teacher_output, losses.DISTILL_LAYERS) if teacher_output is not None else None
        feats = self.vgg(output)
        c = losses.content_loss(feats, content_feats, cfg.content_layers)
        s = losses.gram_style_loss(feats, target_grams, cfg.style_layers)
        tv = losses.total_variation(output)
        total = cfg.content_weight * c + cfg.style_weight * s + cfg.tv_weight * tv
        parts = {"content": c.detach(), "style": s.detach(), "tv": tv.detach()}
        if teacher_output is not None:
            distill = losses.distillation_loss(output, teacher_output, feats, teacher_feats)
            total, parts = total + cfg.distill_weight * distill, {**parts, "distill": distill.detach()}
        total, parts = _add_artifact_penalties(cfg, total, parts, output, content, forward, step)
        return StepOutput(total, parts, output)


class GramMethod(Method):
    """Johnson, Ulyanov and Dumoulin: fixed styles with precomputed Gram targets."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A dumoulin model is N instance-norm nets sharing their convolutions, so one of its rows can teach a ulyanov net.
        self.teacher_methods = (self.name, "dumoulin") if self.name == "ulyanov" else (self.name,)
        with torch.no_grad():
            per_style = [losses.style_grams(self.vgg(s.to(self.device), self.cfg.style_layers), self.cfg.style_layers) for s in self.styles]
        self.target_grams = {name: torch.cat([g[name] for g in per_style]) for name in self.cfg.style_layers}
        self.teacher = self._load_teacher() if self.cfg.teacher else None

    def build(self) -> StyleModel:
        kw = dict(width=self.cfg.width, upsample=self.cfg.upsample, num_styles=len(self.styles), style_names=self.style_names,
                  residual_output=self.cfg.residual_output)
        if self.name == "johnson":
            kw["norm"] = self.cfg.norm
        return build_model(self.name, **kw)

    def loss(self, model, content, step):
        idx = self.pick_styles(step, content.shape[0]).to(self.device)
        rows = idx if self.style_rows is None else torch.tensor(self.style_rows, device=idx.device)[idx]
        weights = torch.nn.functional.one_hot(rows, self.total_styles or len(self.styles)).float()

        def forward(x):
            return model(x, weights)

        output = forward(content)
        teacher_output = None
        if self.teacher is not None:
            with torch.no_grad():
                teacher_weights = weights if self.teacher_rows is None else torch.nn.functional.one_hot(
                    torch.tensor(self.teacher_rows, device=idx.device)[idx], len(self.teacher.style_names)).float()
                teacher_output = self.teacher(content, teacher_weights)
        return self.perceptual(output, content, {k: g[idx] for k, g in self.target_grams.items()}, teacher_output, forward, step)


class MSGNetMethod(Method):
    """MSG-Net: the style Gram comes from the network's own siamese encoder, so gradients reach it;
    the style image's size is jittered per step (the source of brush-size control)."""

    name = "msgnet"
    # A dumoulin model with the same paintings can teach it (not in the paper): its pictures differ per style
    # from the first step, which makes the network use the style's Gram (docs/training.md, session 13).
    teacher_methods = ("msgnet", "dumoulin")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        with torch.no_grad():
            self.vgg_grams = [losses.style_grams(self.vgg(s.to(self.device), self.cfg.style_layers), self.cfg.style_layers) for s in self.styles]
        self.teacher = self._load_teacher() if self.cfg.teacher else None

    def build(self) -> StyleModel:
        return build_model("msgnet", width=self.cfg.width, num_styles=len(self.styles), style_names=self.style_names,
                           residual_output=self.cfg.residual_output, style_stat=self.cfg.style_stat or "gram",
                           upsample=self.cfg.upsample or "nearest")

    def _jittered_style(self, i: int, step: int, k: int = 0) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.cfg.seed * 15_485_863 + step + k * 7_919)
        scale = 0.75 + 0.5 * torch.rand((), generator=gen).item()
        style = self.styles[i].to(self.device)
        h, w = style.shape[-2:]
        return torch.nn.functional.interpolate(style, size=(max(16, round(h * scale)), max(16, round(w * scale))), mode="bilinear", antialias=True, align_corners=False)

    def loss(self, model, content, step):
        net = model.module if hasattr(model, "module") else model
        if self.cfg.distill_only:
            # The teacher's pictures are the targets, so each sample can have its own painting (no Gram target to batch):
            # every step then shows the net several styles on the same kind of photo, the contrast it has to learn.
            idx = self.pick_styles(step, content.shape[0])
            gram = torch.cat([net.style_gram(self._jittered_style(i, step, k)) for k, i in enumerate(idx.tolist())])
            weights = torch.nn.functional.one_hot(idx, len(self.styles)).float().to(content.device)
        else:
            # Zhang & Dana cycle styles per batch: every sample of a batch shares one style.
            i = step % len(self.styles)
            gram = net.style_gram(self._jittered_style(i, step))
            weights = torch.eye(len(self.styles), device=content.device)[i]

        def forward(x):
            return model(x, target_gram=gram)

        output = forward(content)
        teacher_output = None
        if self.teacher is not None:
            with torch.no_grad():
                teacher_output = self.teacher(content, weights)
        target = None if self.cfg.distill_only else self.vgg_grams[i]
        return self.perceptual(output, content, target, teacher_output, forward, step)


class AdaINMethod(Method):
    """AdaIN: frozen encoder, decoder trained with content loss to the AdaIN target and a
    mean/std style loss on relu1_1..relu4_1 of the same encoder (Huang & Belongie, eq. 11–13);
    with ``--layer relu3_1`` both at relu3_1 and the style loss on relu1_1..relu3_1."""

    name = "adain"
    # A dumoulin model of the same paintings can teach it (not in the paper): its picture for the style is a
    # per-pixel target, a denser signal than the style's mean and std (docs/training.md, session 14).
    teacher_methods = ("dumoulin",)
    distill_layers = ("relu2_1", "relu3_1")  # the encoder's own taps stand in for losses.DISTILL_LAYERS

    def __init__(self, cfg, styles, style_names, device) -> None:
        # The loss network is the model's own encoder; no separate VGG is needed.
        self.cfg, self.styles, self.style_names, self.device = cfg, styles, style_names, device
        self.decode: torch.nn.Module | None = None  # set to a DistributedDataParallel decoder under torchrun
        self.teacher = self._load_teacher() if cfg.teacher else None

    def build(self) -> StyleModel:
        from fauve.vgg import load_vgg16_features

        _, source = load_vgg16_features(self.cfg.vgg_source, depth=1)
        model = build_model("adain", width=self.cfg.width, vgg_source=source, upsample=self.cfg.upsample, layer=self.cfg.adain_layer)
        model.load_encoder_weights()
        return model

    def style_batch(self, step: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(each sample's painting index, a random crop of it)."""
        from fauve.train.data import random_crop

        gen = torch.Generator().manual_seed(self.cfg.seed * 32_452_843 + step)
        idx = torch.randint(0, len(self.styles), (batch,), generator=gen)
        return idx, torch.stack([random_crop(self.styles[int(i)][0], self.cfg.size, gen) for i in idx]).to(self.device)

    def loss(self, model, content, step):
        cfg = self.cfg
        net: AdaINNet = model.module if hasattr(model, "module") else model
        idx, style = self.style_batch(step, content.shape[0])
        layer, taps = net.layer, encoder_taps(net.layer)
        b = cfg.margin
        # With --margin the decoder works as in the pipeline: on the features of the crop with b px mirrored
        # around it, its picture cropped back; the content target stays the crop's own (as fauve eval scores it).
        mirrored = (lambda x: torch.nn.functional.pad(x, (b, b, b, b), mode="reflect")) if b else (lambda x: x)
        uncropped = (lambda y: y[..., b:-b, b:-b]) if b else (lambda y: y)
        with torch.no_grad():
            fc = net.encode(content)[layer]
            fs = net.encode(style, taps)
            s_mean, s_std = mean_std(fs[layer])
            target = adain(fc, s_mean, s_std)
            fc_in = net.encode(mirrored(content))[layer] if b else fc
            source = adain(fc_in, s_mean, s_std) if b else target
        decode = self.decode or net.decoder

        def forward(x):
            with torch.no_grad():
                moved = adain(net.encode(mirrored(x))[layer], s_mean, s_std)
            return uncropped(decode(moved))

        output = uncropped(decode(source))
        fo = net.encode(output, taps)
        c = losses.relative_mse(fo[layer], target)
        s = losses.mean_std_style_loss(fo, fs, cfg.style_layers)
        tv = losses.total_variation(output)
        total = cfg.content_weight * c + cfg.style_weight * s + cfg.tv_weight * tv
        parts = {"content": c.detach(), "style": s.detach(), "tv": tv.detach()}
        if self.teacher is not None:
            with torch.no_grad():
                teacher_output = self.teacher(content, torch.nn.functional.one_hot(idx, len(self.styles)).float().to(content.device))
                teacher_feats = net.encode(teacher_output, self.distill_layers)
            distill = losses.distillation_loss(output, teacher_output, fo, teacher_feats, self.distill_layers)
            total, parts = total + cfg.distill_weight * distill, {**parts, "distill": distill.detach()}
        total, parts = _add_artifact_penalties(cfg, total, parts, output, content, forward, step)
        if cfg.identity_weight:
            # AdaIN(f_c, μ(f_c), σ(f_c)) = f_c, so decoding the photo's own features should give the photo back.
            total = total + cfg.identity_weight * losses.relative_mse(uncropped(decode(fc_in)), content)
        return StepOutput(total, parts, output)


def method_class(name: str) -> Callable[..., Method]:
    if name in ("johnson", "ulyanov", "dumoulin"):
        return type(f"{name.title()}Method", (GramMethod,), {"name": name})
    return {"msgnet": MSGNetMethod, "adain": AdaINMethod}[name]
