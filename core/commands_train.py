"""``fauve train {johnson,ulyanov,dumoulin,msgnet,adain}``."""

from __future__ import annotations

import argparse
from pathlib import Path

from fauve.train.defaults import DEFAULTS


def _distill_weight(args) -> float:
    weight = getattr(args, "distill_weight", None)
    if weight is None:
        return 30.0 if getattr(args, "teacher", None) else 0.0
    return weight


def _layers(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train a style network", description="Train one of the five methods; writes a Hub-ready model folder.")
    methods = parser.add_subparsers(dest="method", metavar="METHOD", required=True)
    for name, d in DEFAULTS.items():
        p = methods.add_parser(
            name, help=f"{name} ({d.paper})",
            description=f"Train {name} ({d.paper}). Defaults: lr {d.lr}, batch {d.batch_size}, {d.iters} iterations, "
            f"content {','.join(d.content_layers)} × {d.content_weight}, style {','.join(d.style_layers)} × {d.style_weight}.",
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        p.add_argument("--content", required=True, help="folder of content photos (searched recursively)")
        if name in ("johnson", "ulyanov"):
            p.add_argument("--style", required=True, help="the style image")
        elif name == "dumoulin":
            g = p.add_mutually_exclusive_group(required=True)
            g.add_argument("--styles", help="folder of style images, one style each")
            g.add_argument("--style", action="append", help="a style image (repeatable)")
            g.add_argument("--add-style", action="append", metavar="IMG", help="add this style to the model given by --from (trains only new γ, β rows; a style the model already has is re-trained in place, the others stay bit-identical)")
            p.add_argument("--from", dest="from_model", help="the dumoulin model folder that --add-style extends")
        else:  # msgnet, adain
            g = p.add_mutually_exclusive_group(required=True)
            g.add_argument("--styles", help="folder of paintings (the style distribution)")
            g.add_argument("--style", action="append", help="a painting (repeatable; in a --teacher's order when distilling)")
        p.add_argument("-o", "--out", required=True, help="output model folder (checkpoints, samples and logs go here too)")
        p.add_argument("--size", type=int, default=256, help="training crop size")
        p.add_argument("--style-size", type=int, default=256, help="long side of the style images")
        p.add_argument("--batch-size", type=int, default=None, help=f"default {d.batch_size}")
        p.add_argument("--iters", type=int, default=None, help=f"default {d.iters}")
        p.add_argument("--lr", type=float, default=None, help=f"default {d.lr}")
        p.add_argument("--warmup", type=int, default=0, metavar="STEPS",
                       help="raise the lr linearly from 0 over this many steps (keeps the first Adam steps from blowing up)")
        p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                       help="stop after this many seconds of training, checkpoint and write the model (--resume continues)")
        p.add_argument("--clip-grad", type=float, default=0.0, metavar="RATIO",
                       help="clip the gradient norm at RATIO × its running average (e.g. 3; 0 = off): tames the loss spikes of single odd crops")
        p.add_argument("--content-weight", type=float, default=None, help=f"default {d.content_weight}")
        p.add_argument("--style-weight", type=float, default=None, help=f"default {d.style_weight}")
        p.add_argument("--tv-weight", type=float, default=None, help=f"default {d.tv_weight}")
        p.add_argument("--lattice-weight", type=float, default=0.0, metavar="W",
                       help="add W × the output's spectral lines on the 2/4/8 px upsampling lattice beyond the photo's own "
                            "(fauve.losses.lattice_penalty; not in the papers): against fine grid patterns; 30 with --style-weight 40 "
                            "after --upsample bilinear is the shipped Starry Night recipe (docs/training.md)")
        p.add_argument("--stripe-weight", type=float, default=0.0, metavar="W",
                       help="add W × how far the output's spectrum stands out along a frequency axis beyond the photo's "
                            "(fauve.losses.stripe_penalty, the eval's stripe score made differentiable; not in the papers): "
                            "against fine parallel hatching from slim generators")
        p.add_argument("--shift-weight", type=float, default=0.0, metavar="W",
                       help="add W × how much the picture changes when the photo moves by a few px against the pixel grid "
                            "(fauve.losses.shift_equivariance_loss; not in the papers): against grid patterns tied to the "
                            "network's stride or pooling, without penalising texture that follows the photo")
        p.add_argument("--teacher", metavar="MODEL", default=None,
                       help="distil from MODEL, a trained model of the same method (msgnet: also dumoulin; adain: dumoulin only) and the same "
                            "styles in the same order (ulyanov: also a dumoulin model that has this painting, whose row teaches; e.g. a slimmer --width student of a shipped model): adds --distill-weight × the distance of "
                            "the picture's VGG features (relu2_2, relu3_3; adain: its encoder's relu2_1, relu3_1) and pixels to the teacher's (fauve.losses.distillation_loss); "
                            "with --init TEACHER --width W the student starts as the teacher pruned to width W")
        p.add_argument("--distill-weight", type=float, default=None, metavar="W", help="weight of the distillation loss (default 30 with --teacher)")
        if name != "adain":
            p.add_argument("--distill-only", action="store_true",
                           help="train on the --teacher's pictures alone: the distillation loss (plus --tv-weight and the artefact penalties) without content or style loss, so the "
                                "loss network runs only to relu3_3 (not in the papers; msgnet: a painting per sample). For a student that "
                                "has not learnt to tell its styles apart (docs/training.md, session 21); content and style are not "
                                "computed (NaN in losses.csv)")
        p.add_argument("--content-layers", type=_layers, default=None, help=f"default {','.join(d.content_layers)}")
        p.add_argument("--style-layers", type=_layers, default=None, help=f"default {','.join(d.style_layers)}")
        p.add_argument("--width", type=float, default=None, help="channel width multiplier (0.5 halves every layer)")
        if name in ("johnson", "ulyanov", "dumoulin"):
            p.add_argument("--upsample", choices=["nearest", "bilinear", "transposed"], default=None,
                           help="nearest+conv (default; no checkerboard), bilinear+conv (no finer lattice patterns either; "
                                "can fine-tune a nearest model given to --init) or the paper's transposed conv")
        if name in ("adain", "msgnet"):
            p.add_argument("--upsample", choices=["nearest", "bilinear"], default=None,
                           help="decoder resize: nearest (the paper's, default) or bilinear (no fine lattice pattern; "
                                "can fine-tune a nearest decoder given to --init)")
        if name != "adain":
            p.add_argument("--residual-output", action="store_true",
                           help="output = input + network(input): starts as the identity, learns faster on small budgets (not in the paper)")
        if name == "dumoulin":
            p.add_argument("--style-lr-mult", type=float, default=1.0, metavar="X",
                           help="learning rate of the per-style γ, β = X × --lr (each style's row learns from 1/N of the samples; 10 helps 16 styles separate on short runs)")
        if name == "msgnet":
            p.add_argument("--style-stat", choices=["gram", "covariance"], default=None,
                           help="what CoMatch takes of the style image: its Gram matrix (the paper's; default, or --init's) or "
                                "its covariance (not in the paper: the Gram minus the mean outer product that all paintings share)")
        if name == "adain":
            p.add_argument("--layer", dest="adain_layer", choices=["relu4_1", "relu3_1"], default=None,
                           help="where AdaIN sits: relu4_1 (the paper's; default, or --init's) or relu3_1 (not in the paper: "
                                "256 statistics, smaller strokes, keeps more of the photo; trains well on a CPU)")
            p.add_argument("--margin", type=int, default=0, metavar="PX",
                           help="mirror PX px of photo around each training crop and crop them off the picture before the losses, "
                                "as the pipeline does at inference (16): the decoder then never sees the zero-padded encoder's "
                                "border features, which it otherwise paints as a fringe (not in the paper)")
            p.add_argument("--identity-weight", type=float, default=0.0, metavar="W",
                           help="add W × ‖D(f(c)) − c‖² / ‖c‖²: the decoder also rebuilds the photo from its own features "
                                "(Park & Lee 2019's identity loss; not in the AdaIN paper). Sharper, more faithful photos on short runs; e.g. 1")
        if name == "johnson":
            p.add_argument("--norm", choices=["batch", "instance"], default="batch", help="the paper's BatchNorm, or InstanceNorm for comparisons")
        p.add_argument("--vgg", dest="vgg_source", choices=["auto", "torchvision", "hed"], default="auto", help="VGG16 weight source of the loss network")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
        p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="autocast precision: bf16 or fp16 on CUDA; bf16 on a CPU (with --channels-last ~4× faster on AVX-512-BF16/AMX CPUs)")
        p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
        p.add_argument("--channels-last", action="store_true")
        p.add_argument("--checkpoint-every", type=int, default=100)
        p.add_argument("--sample-every", type=int, default=200)
        p.add_argument("--snapshot-every", type=int, default=0, metavar="N",
                       help="also write the model every N steps to OUT/snapshots/stepNNNNNN/ (a model folder: eval, stylize or ship "
                            "an earlier state; checkpoint.pt keeps only the latest)")
        p.add_argument("--sample-images", nargs="*", default=[], help="photos for the sample grids (default: the bundled Kodak samples, never the training photos)")
        p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
        p.add_argument("--init", dest="init_from", metavar="MODEL",
                       help="start from this trained model's weights (fine-tune; same method, or ulyanov for dumoulin)")
        p.add_argument("--half", action="store_true", help="save the final weights in fp16")
        p.set_defaults(func=run)


def _style_list(args) -> list[str]:
    from fauve.train.data import find_images

    if getattr(args, "add_style", None):
        return list(args.add_style)
    if getattr(args, "styles", None):
        return [str(p) for p in find_images(args.styles)]
    style = args.style
    return list(style) if isinstance(style, list) else [style]


def run(args) -> int:
    from fauve.errors import FauveError
    from fauve.train.loop import TrainConfig, train

    if getattr(args, "add_style", None) and not args.from_model:
        raise FauveError("--add-style needs --from MODEL.", "Pass the dumoulin model folder to extend with --from.")
    if getattr(args, "add_style", None) and args.init_from:
        raise FauveError("--add-style and --init cannot be combined.", "--add-style already starts from the model given by --from.")
    cfg = TrainConfig(
        method=args.method, content=args.content, styles=_style_list(args), out=args.out, size=args.size,
        style_size=args.style_size, batch_size=args.batch_size, iters=args.iters, lr=args.lr,
        content_weight=args.content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight, lattice_weight=args.lattice_weight, stripe_weight=args.stripe_weight, shift_weight=args.shift_weight,
        content_layers=args.content_layers, style_layers=args.style_layers, width=args.width,
        upsample=getattr(args, "upsample", None), residual_output=getattr(args, "residual_output", False), norm=getattr(args, "norm", "batch"), vgg_source=args.vgg_source,
        seed=args.seed, device=args.device, precision=args.precision, compile=args.compile,
        channels_last=args.channels_last, checkpoint_every=args.checkpoint_every, snapshot_every=args.snapshot_every, sample_every=args.sample_every,
        resume=args.resume, half_weights=args.half, add_style_from=getattr(args, "from_model", None),
        init_from=args.init_from, warmup=args.warmup, time_limit=args.time_limit, clip_grad=args.clip_grad, style_lr_mult=getattr(args, "style_lr_mult", 1.0),
        identity_weight=getattr(args, "identity_weight", 0.0), margin=getattr(args, "margin", 0), adain_layer=getattr(args, "adain_layer", None), style_stat=getattr(args, "style_stat", None),
        teacher=getattr(args, "teacher", None),
        distill_weight=_distill_weight(args),
        distill_only=getattr(args, "distill_only", False),
        sample_images=args.sample_images,
    )
    out = train(cfg)
    print(f"model written to {Path(out).resolve()}")
    return 0
