"""The one training loop shared by all five methods.

Single process, or many under ``torchrun`` (DistributedDataParallel; gloo on CPU, nccl on CUDA;
rank 0 writes). Checkpoints are written atomically (temp file + rename) and hold the model, the
optimizer and the step; every random choice is a function of (seed, step), so ``--resume`` after a
SIGKILL follows the uninterrupted run's loss curve.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from fauve.errors import FauveError, InputImageError
from fauve.models.adain import encoder_taps
from fauve.train.data import ImageStream, find_images, load_style
from fauve.train.methods import DEFAULTS, method_class

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    method: str
    content: str
    styles: list[str]
    out: str
    size: int = 256
    style_size: int = 256
    batch_size: int | None = None
    iters: int | None = None
    lr: float | None = None
    content_weight: float | None = None
    style_weight: float | None = None
    tv_weight: float | None = None
    lattice_weight: float = 0.0  # weight of losses.lattice_penalty (grid patterns on the upsampling lattice)
    stripe_weight: float = 0.0  # weight of losses.stripe_penalty (fine parallel lines along an axis)
    shift_weight: float = 0.0  # weight of losses.shift_equivariance_loss (patterns tied to the pixel lattice)
    content_layers: tuple[str, ...] | None = None
    style_layers: tuple[str, ...] | None = None
    width: float | None = None
    upsample: str | None = None  # nearest unless given, or taken from --init's model
    residual_output: bool = False
    norm: str = "batch"
    vgg_source: str = "auto"
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False
    channels_last: bool = False
    checkpoint_every: int = 100
    snapshot_every: int = 0  # also write the model as it is every N steps to OUT/snapshots/stepNNNNNN/ (0: never)
    sample_every: int = 200
    resume: bool = False
    half_weights: bool = False
    add_style_from: str | None = None
    init_from: str | None = None
    warmup: int = 0
    time_limit: float | None = None  # seconds of training in this run; then checkpoint and export
    clip_grad: float = 0.0  # clip the gradient norm at this multiple of its running average (0: off)
    style_lr_mult: float = 1.0  # dumoulin: learning-rate multiplier of the per-style γ, β
    identity_weight: float = 0.0  # adain: weight of the photo-reconstruction (identity) loss
    margin: int = 0  # adain: px of photo mirrored around each crop and cropped off again, as the pipeline does
    adain_layer: str | None = None  # adain: where AdaIN sits, relu4_1 (the paper's, default) or relu3_1
    style_stat: str | None = None  # msgnet: what CoMatch takes of the style, gram (the paper's, default) or covariance
    teacher: str | None = None  # a trained model of the same styles to distil from (same method; msgnet/adain: also dumoulin; ulyanov: a dumoulin row)
    distill_weight: float = 0.0  # weight of losses.distillation_loss to the teacher's pictures
    distill_only: bool = False  # train on the teacher's pictures alone: the distillation loss, no content or style loss
    pruned_from_width: float | None = None  # set by --init when --width asks for a slimmer net than the model's
    init_style: str | None = None  # set by --init when a ulyanov run starts from one style of a dumoulin model
    sample_images: list[str] = field(default_factory=list)

    def fill_defaults(self) -> "TrainConfig":
        d = DEFAULTS[self.method]
        if self.method == "adain":
            # The content loss sits at the AdaIN layer and the style loss on the relu*_1 taps up to it.
            if self.adain_layer is None:
                self.adain_layer = _model_arch(self.init_from).get("layer", "relu4_1") if self.init_from else "relu4_1"
            self.content_layers = self.content_layers or (self.adain_layer,)
            self.style_layers = self.style_layers or encoder_taps(self.adain_layer)
        if self.method == "msgnet" and self.style_stat is None:
            self.style_stat = _model_arch(self.init_from).get("style_stat", "gram") if self.init_from else "gram"
        for key in ("lr", "batch_size", "iters", "content_layers", "style_layers", "content_weight", "style_weight", "tv_weight", "width"):
            if key == "width" and self.init_from:
                continue  # taken from --init's model, or a smaller width to prune it to
            if getattr(self, key) is None:
                setattr(self, key, getattr(d, key))
        if self.upsample is None and not self.init_from:
            self.upsample = "nearest"
        self.content_layers = tuple(self.content_layers)
        self.style_layers = tuple(self.style_layers)
        return self


def _model_arch(path: str) -> dict:
    """The architecture in a trained model's config.json (``--init``'s, before the run builds anything)."""
    from fauve.models import load_model

    try:
        return load_model(path).hub_config()
    except Exception:  # noqa: BLE001 - init_from reports a folder that is not a model, with the fix
        return {}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def validate(cfg: TrainConfig) -> None:
    """Fail before training starts on anything that would fail later."""
    multiple = 8 if cfg.method == "adain" and cfg.adain_layer == "relu4_1" else 4
    if cfg.size < 32 or cfg.size % multiple:
        raise FauveError(f"--size {cfg.size} is too small or not a multiple of {multiple} for {cfg.method}.", f"Use a multiple of {multiple}, at least 32 (256 is the papers' size).")
    if not cfg.styles:
        raise InputImageError("No style images given.", "Pass --style IMG, or --styles DIR for several.")
    for s in cfg.styles:
        if not Path(s).is_file():
            raise InputImageError(f"Style image {s} does not exist.", "Check the path given to --style/--styles.")
    if cfg.method in ("johnson", "ulyanov") and len(cfg.styles) != 1:
        raise FauveError(f"{cfg.method} trains one style per model; got {len(cfg.styles)}.", "Use dumoulin or msgnet for several styles in one network.")
    if cfg.method == "adain":
        taps = encoder_taps(cfg.adain_layer)
        if cfg.content_layers != (cfg.adain_layer,) or not set(cfg.style_layers) <= set(taps):
            raise FauveError(f"adain with AdaIN at {cfg.adain_layer} takes its content loss there and style layers among {','.join(taps)}; "
                             f"got content {','.join(cfg.content_layers)}, style {','.join(cfg.style_layers)}.",
                             "Drop --content-layers and --style-layers, or pick style layers from that list.")
    if cfg.margin and (cfg.method != "adain" or cfg.margin % multiple or cfg.margin >= cfg.size):
        raise FauveError(f"--margin {cfg.margin} does not fit: it is for adain, a multiple of {multiple} below --size ({cfg.size}).",
                         "Use --margin 16 (what the pipeline mirrors around adain's pictures), or drop it.")
    if cfg.distill_weight and not cfg.teacher:
        raise FauveError("--distill-weight needs a --teacher model.", "Add --teacher MODEL (a trained model of the same method and styles).")
    if cfg.distill_only and (not cfg.teacher or cfg.method == "adain"):
        raise FauveError(f"--distill-only trains on a teacher's pictures alone; {cfg.method} run without --teacher."
                         if cfg.method != "adain" else "--distill-only is for the fixed-style generators and msgnet, not adain.",
                         "Add --teacher MODEL, or drop --distill-only." if cfg.method != "adain" else "Drop --distill-only.")
    find_images(cfg.content)


def train(cfg: TrainConfig) -> Path:
    """Train ``cfg.method`` and write a Hub-ready model folder to ``cfg.out``; return its path."""
    cfg.fill_defaults()
    validate(cfg)
    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    device = pick_device(cfg.device)
    autocast = _autocast(device, cfg.precision)  # an unsupported precision fails here, before any loading
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    is_main = rank == 0
    torch.manual_seed(cfg.seed)

    out = Path(cfg.out)
    if is_main:
        (out / "samples").mkdir(parents=True, exist_ok=True)
    # adain crops its paintings at the training size (AdaINMethod.style_batch); loading them at no less than
    # --style-size keeps the crops' brush strokes sharp when --size is small.
    style_size = max(cfg.size, cfg.style_size) if cfg.method == "adain" else cfg.style_size
    styles = [load_style(p, style_size) for p in cfg.styles]
    style_names = [Path(p).stem for p in cfg.styles]
    method = method_class(cfg.method)(cfg, styles, style_names, device)

    if cfg.add_style_from:
        from fauve.train.add_style import extend_dumoulin

        model, trainable, restore = extend_dumoulin(cfg, method, device)
    else:
        from fauve.train.init_from import init_from

        model = (init_from(cfg, method) if cfg.init_from else method.build()).to(device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        restore = None
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
        for frozen in (getattr(method, "vgg", None), getattr(method, "teacher", None)):
            if frozen is not None:
                frozen.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(_param_groups(model, trainable, cfg), lr=cfg.lr)
    grad_clip = GradClip(trainable, cfg.clip_grad, device)

    start = 0
    ckpt_path = out / CHECKPOINT
    if cfg.resume and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for group, fresh in zip(optimizer.param_groups, _param_groups(model, trainable, cfg)):
            group["lr"] = group["base_lr"] = fresh["base_lr"]  # a resume may change --lr (e.g. a lower rate to finish)
        start = int(state["step"])
        grad_clip.load(state.get("grad_clip"))
    elif cfg.resume and is_main:
        print(f"fauve train: no checkpoint in {out}; starting from step 0")

    forward_model = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        if cfg.method == "adain":
            method.decode = DDP(model.decoder, device_ids=ids)
        else:
            forward_model = DDP(model, device_ids=ids)
    if cfg.compile:
        forward_model = torch.compile(forward_model)

    stream = ImageStream(find_images(cfg.content), cfg.size, cfg.batch_size, seed=cfg.seed, rank=rank, world=world)
    log_path = out / "losses.csv"
    log_file = None
    if is_main:
        new_log = not (cfg.resume and log_path.is_file() and start > 0)
        elapsed_before = 0.0
        if not new_log:
            elapsed_before = _truncate_log(log_path, start)
        log_file = open(log_path, "w" if new_log else "a", newline="")
        writer = csv.writer(log_file)
        if new_log:
            writer.writerow(["step", "loss", "content", "style", "tv", "seconds", "skipped_images", "grad_norm", "lattice", "distill", "stripes", "shift"])
        (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2, default=list))

    model.train()
    t0 = time.perf_counter() - (elapsed_before if is_main else 0.0)
    run_start = time.perf_counter()
    bar = tqdm(range(start, cfg.iters), initial=start, total=cfg.iters, disable=not is_main, desc=f"train {cfg.method}", unit="it")
    last: dict[str, float] = {}
    pending: list[tuple[int, torch.Tensor]] = []  # (step, [loss, content, style, tv, grad norm, lattice, distill, stripes, shift]) not yet read back
    batches = stream.prefetch(start, cfg.iters)
    done = start
    for step in bar:
        content = next(batches).to(device, non_blocking=True)
        if cfg.channels_last:
            content = content.contiguous(memory_format=torch.channels_last)
        with autocast:
            result = method.loss(forward_model, content, step)
        optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        grad_norm = grad_clip()
        if cfg.warmup:  # linear warm-up: a function of the step alone, so resuming repeats it exactly
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * min(1.0, (step + 1) / cfg.warmup)
        optimizer.step()
        if restore is not None:
            restore()
        done = step + 1
        zero = torch.zeros((), device=result.loss.device)
        pending.append((done, torch.stack([result.loss.detach().float(), *(result.parts[k].float() for k in ("content", "style", "tv")), grad_norm,
                                           *(result.parts.get(k, zero).float() for k in ("lattice", "distill", "stripes", "shift"))])))
        out_of_time = cfg.time_limit is not None and time.perf_counter() - run_start >= cfg.time_limit
        sample_now = done % cfg.sample_every == 0 or done == cfg.iters
        checkpoint_now = done % cfg.checkpoint_every == 0 or done == cfg.iters or out_of_time
        if len(pending) >= 10 or sample_now or checkpoint_now:
            # One device→host copy per 10 steps instead of four per step.
            values = torch.stack([v for _, v in pending]).cpu().tolist()
            for (logged, _), (loss, c, st, tv, gn, lat, dis, stp, sh) in zip(pending, values):
                if not math.isfinite(loss):
                    raise FauveError(f"Training diverged at step {logged - 1} (loss {loss}).", "Lower --lr or --style-weight and resume from the last checkpoint with --resume.")
                # --distill-only computes neither content nor style (NaN in the log): the card then shows the distillation loss.
                last = {"loss": loss, **{k: v for k, v in (("content", c), ("style", st)) if math.isfinite(v)}, "tv": tv,
                        **({"distill": dis} if cfg.distill_only else {})}
                if is_main:
                    writer.writerow([logged, *(f"{v:.6g}" for v in (loss, c, st, tv)), f"{time.perf_counter() - t0:.2f}", len(stream.skipped), f"{gn:.4g}", f"{lat:.4g}", f"{dis:.4g}", f"{stp:.4g}", f"{sh:.4g}"])
            pending.clear()
            if is_main:
                log_file.flush()
                bar.set_postfix({"loss": f"{last['loss']:.3f}", **{k[0]: f"{last[k]:.3f}" for k in ("content", "style", "distill") if k in last}})
        if is_main:
            if sample_now:
                _write_samples(model, method, cfg, device, out / "samples" / f"step{done:06d}.png")
            if checkpoint_now:
                _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": done,
                              "grad_clip": grad_clip.state()}, ckpt_path)
            if cfg.snapshot_every and done % cfg.snapshot_every == 0:
                # The checkpoint is overwritten; a snapshot keeps this state as a model folder to eval or ship.
                _export(model, method, cfg, out / "snapshots" / f"step{done:06d}", last, len(stream.skipped), done)
        if out_of_time:
            if is_main:
                print(f"fauve train: --time-limit {cfg.time_limit:g} s reached at step {done}; the model is written, --resume continues")
            break
    batches.close()
    if is_main:
        log_file.close()
        _export(model, method, cfg, out, last, len(stream.skipped), done)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return out


def _param_groups(model: torch.nn.Module, trainable: list[torch.nn.Parameter], cfg: TrainConfig) -> list[dict]:
    """Adam's parameter groups, each with its ``base_lr`` (what warm-up and resume scale). With
    ``--style-lr-mult`` the conditional norms' γ, β of a dumoulin net get their own rate: each style's
    row only learns from the samples of that style (1/N of them), so at the shared rate 16 styles
    separate slowly (docs/training.md)."""
    from fauve.models.layers import ConditionalInstanceNorm

    wanted = {id(p) for p in trainable}
    style = [p for m in model.modules() if isinstance(m, ConditionalInstanceNorm) for p in m.parameters() if id(p) in wanted]
    if cfg.style_lr_mult == 1.0 or not style:
        return [{"params": trainable, "lr": cfg.lr, "base_lr": cfg.lr}]
    ids = {id(p) for p in style}
    shared = [p for p in trainable if id(p) not in ids]
    lr = cfg.lr * cfg.style_lr_mult
    return [g for g in ({"params": shared, "lr": cfg.lr, "base_lr": cfg.lr}, {"params": style, "lr": lr, "base_lr": lr}) if g["params"]]


class GradClip:
    """Clip the gradient norm at ``ratio`` × its running average (an EMA of the clipped norms, after
    20 unclipped steps to start it). A single crop whose Gram matrix is far from the painting's can
    make one step's gradient ~100× the usual; unclipped, it moves the weights far and inflates Adam's
    second moment for ~1/(1−β₂) steps (docs/training.md). Everything stays on the device: no host
    sync per step. Returns the norm before clipping (logged as ``grad_norm``)."""

    START = 20

    def __init__(self, params: list[torch.nn.Parameter], ratio: float, device: torch.device) -> None:
        self.params, self.ratio = params, ratio
        self.ema = torch.zeros((), device=device)
        self.seen = 0

    def __call__(self) -> torch.Tensor:
        grads = [p.grad for p in self.params if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads).float()
        if self.ratio <= 0:
            return norm
        if self.seen < self.START:
            self.ema = self.ema + (norm - self.ema) / (self.seen + 1)  # plain mean of the first steps
        else:
            limit = self.ratio * self.ema
            scale = torch.clamp(limit / (norm + 1e-12), max=1.0)
            torch._foreach_mul_(grads, scale)
            self.ema = 0.99 * self.ema + 0.01 * torch.minimum(norm, limit)
        self.seen += 1
        return norm

    def state(self) -> dict:
        return {"ema": self.ema.detach().cpu(), "seen": self.seen}

    def load(self, state: dict | None) -> None:
        if state:
            self.ema = state["ema"].to(self.ema.device)
            self.seen = int(state["seen"])


def _truncate_log(path: Path, step: int) -> float:
    """Drop log rows past the checkpoint, so a resumed run's log has each step once; return the
    training seconds logged so far, so the seconds column keeps counting across resumes."""
    rows = list(csv.reader(path.open()))
    header = rows[0] + [c for c in ("lattice", "distill", "stripes", "shift") if c not in rows[0]]  # logs of older runs lack the newer columns
    kept = [header] + [r + ["0"] * (len(header) - len(r)) for r in rows[1:] if r and int(r[0]) <= step]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(kept)
    return float(kept[-1][5]) if len(kept) > 1 else 0.0


class _NullContext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 in hardware on this CPU (AVX-512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def _autocast(device: torch.device, precision: str):
    if precision in ("bf16", "fp16") and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    if precision == "bf16" and device.type == "cpu":
        # oneDNN runs bf16 convolutions on AVX-512-BF16 / AMX; with --channels-last a training step on such a
        # Xeon is ~4× faster than fp32 (docs/training.md, session 13). Gradients and Adam stay fp32.
        if not cpu_has_native_bf16():
            print("fauve train: warning: this CPU has no native bf16 (AVX-512-BF16 or AMX), so bf16 is emulated: "
                  "~10× slower than fp32 here (an adain step on an AMD EPYC: 53 s vs 5.1 s). Use --precision fp32.", file=sys.stderr)
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if precision == "fp16" and device.type != "cuda":
        raise FauveError(f"--precision fp16 needs a CUDA GPU; this run is on {device.type}.",
                         "Use --precision bf16 on a CPU (fast on CPUs with AVX-512-BF16 or AMX) or fp32.")
    return _NullContext()


def _sample_inputs(cfg: TrainConfig, device: torch.device) -> torch.Tensor:
    from fauve.sample_grid import SAMPLE_PHOTOS
    from fauve.train.data import random_crop, read_rgb

    # Never the training photos by default: the grid goes into the model card (fauve.sample_grid).
    paths = cfg.sample_images or [str(p) for p in SAMPLE_PHOTOS]
    gen = torch.Generator().manual_seed(1234)
    imgs = [read_rgb(Path(p)) for p in paths]
    return torch.stack([random_crop(i, cfg.size, gen, jitter=(1.0, 1.0)) for i in imgs if i is not None]).to(device)


@torch.no_grad()
def _stylize_all_styles(model, method, cfg, content: torch.Tensor) -> list[torch.Tensor]:
    """One row per style: content images stylized with that style."""
    was_training = model.training
    model.eval()
    rows = []
    n = len(method.styles)
    for i in range(min(n, 16)):
        if cfg.method == "msgnet":
            y = model(content, target_gram=model.style_gram(method.styles[i].to(content.device)))
        elif cfg.method == "adain":
            y = model(content, style_stats=model.style_stats(method.styles[i].to(content.device)))
        else:
            w = torch.zeros(content.shape[0], method.total_styles or n, device=content.device)
            w[:, i if method.style_rows is None else method.style_rows[i]] = 1.0
            y = model(content, w)
        rows.append(y.clamp(0, 1))
    model.train(was_training)
    return rows


def _write_samples(model, method, cfg, device, path: Path) -> None:
    from torchvision.utils import save_image

    content = _sample_inputs(cfg, device)
    rows = [content] + _stylize_all_styles(model, method, cfg, content)
    save_image(torch.cat(rows), path, nrow=content.shape[0], padding=2)


def _export(model, method, cfg: TrainConfig, out: Path, last: dict, skipped: int, steps: int) -> None:
    export = copy.deepcopy(model).cpu().eval()
    if cfg.method == "msgnet":
        export.set_style_grams([s for s in method.styles])
    if cfg.method == "adain":
        export = _with_named_styles(export, method)
    export.loss_net = method.vgg.source_info() if hasattr(method, "vgg") else {"name": "vgg16", "source": export.vgg_source}
    export.training_recipe = {
        "content_data": str(cfg.content), "size": cfg.size, "style_size": cfg.style_size, "batch_size": cfg.batch_size,
        "iters": steps, **({"planned_iters": cfg.iters} if steps != cfg.iters else {}), "lr": cfg.lr, **({"warmup": cfg.warmup} if cfg.warmup else {}), **({"clip_grad": cfg.clip_grad} if cfg.clip_grad else {}), **({"style_lr_mult": cfg.style_lr_mult} if cfg.style_lr_mult != 1.0 else {}), **({"identity_weight": cfg.identity_weight} if cfg.identity_weight else {}), **({"margin": cfg.margin} if cfg.margin else {}), **({"teacher": Path(cfg.teacher).resolve().name, "distill_weight": cfg.distill_weight} if cfg.teacher else {}), **({"distill_only": True} if cfg.distill_only else {}), "content_layers": list(cfg.content_layers), "style_layers": list(cfg.style_layers),
        "content_weight": cfg.content_weight, "style_weight": cfg.style_weight, "tv_weight": cfg.tv_weight, **({"lattice_weight": cfg.lattice_weight} if cfg.lattice_weight else {}), **({"stripe_weight": cfg.stripe_weight} if cfg.stripe_weight else {}), **({"shift_weight": cfg.shift_weight} if cfg.shift_weight else {}),
        "seed": cfg.seed, "hardware": _hardware(next(model.parameters()).device), "precision": cfg.precision, **({"init_from": Path(cfg.init_from).resolve().name} if cfg.init_from else {}), **({"pruned_from_width": cfg.pruned_from_width} if cfg.pruned_from_width else {}), **({"init_style": cfg.init_style} if cfg.init_style else {}), **({"add_style_from": Path(cfg.add_style_from).resolve().name, "trained_styles": list(method.style_names)} if cfg.add_style_from else {}), "final_losses": last, "skipped_images": skipped,
    }
    export.style_sources = method.style_sources or [Path(p).name for p in cfg.styles]
    if cfg.half_weights:
        export = export.half()
    (out / "README.md").unlink(missing_ok=True)  # a re-export replaces the card
    export.save_pretrained(out)
    _write_samples(model, method, cfg, next(model.parameters()).device, out / "samples.png")
    from fauve.modelcard import write_model_card

    write_model_card(out, style_images=list(cfg.styles), sample_grid=out / "samples.png")


def _hardware(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def _with_named_styles(export, method):
    from fauve.models import build_model

    names = method.style_names
    named = build_model("adain", width=export.width, vgg_source=export.vgg_source, upsample=export.upsample, layer=export.layer,
                        num_styles=len(names), style_names=names)
    state = {k: v for k, v in export.state_dict().items() if not k.startswith("style_")}
    named.load_state_dict(state, strict=False)
    named.set_named_styles(method.styles)
    return named.eval()

