#!/usr/bin/env python
"""How well can a decoder rebuild a photo from the HED VGG16's relu3_1 or relu4_1 features?

AdaIN decoders trained on the CPU here (sessions 5–14) draw embossed outlines and lose the photo's flat colour.
The loss network's weights come from HED (VGG16 fine-tuned on BSDS500 edges), whose deeper layers answer edges;
this trains AdaIN's mirrored decoder from scratch with only the identity loss ‖D(E(c)) − c‖² / ‖c‖², from relu4_1
(the paper's layer, AdaINNet's decoder) or relu3_1 (its last two stages), the same photos, seed, steps and
optimiser, and prints the loss curve and the held-out reconstruction error on Kodak photos.
With ``--style-weight W`` it trains a whole AdaIN at that layer instead (content loss to the AdaIN target, W × the
mean/std style loss on the encoder's relu*_1 taps up to the layer, plus the identity loss) on the paintings of
``--styles`` and also writes kodim23 in three held-in paintings.

    python scripts/experiments/adain-bottleneck.py --layer relu3_1 --steps 1000 -o runs/adain-ae31
    python scripts/experiments/adain-bottleneck.py --layer relu3_1 --steps 2000 --style-weight 2 --styles runs/adain-styles -o runs/adain-31
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import torch
from torch import nn

from fauve import losses
from fauve.evaluate import load_tensor
from fauve.models.adain import ENCODER_TAPS, AdaINNet, _decoder
from fauve.models.layers import ConvLayer, adain, mean_std
from fauve.train.data import ImageStream, find_images, load_style, random_crop
from fauve.vgg import TAP_INDEX, load_vgg16_features

DATA = Path(os.environ.get("FAUVE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def decoder_for(layer: str, upsample: str) -> nn.Sequential:
    full = _decoder(1.0, upsample)
    if layer == "relu4_1":
        return full
    # relu3_1: 256 channels at 1/4 resolution, i.e. AdaINNet's decoder from its 256 → 128 conv on.
    tail = list(full)[7:]  # not .children(), which yields the shared upsampling module once
    assert isinstance(tail[0], ConvLayer) and tail[0].conv.in_channels == 256
    return nn.Sequential(*tail)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layer", choices=["relu3_1", "relu4_1"], required=True)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--style-weight", type=float, default=0.0, help="0: reconstruction only")
    ap.add_argument("--styles", default=None, help="folder of paintings (with --style-weight)")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    _, source = load_vgg16_features("auto", depth=TAP_INDEX[args.layer] + 1)  # before the decoder: its init follows this RNG state
    decoder = decoder_for(args.layer, "bilinear")
    net = AdaINNet(vgg_source=source).eval()  # only its frozen VGG16 encoder is used
    net.load_encoder_weights()
    taps = tuple(t for t in ENCODER_TAPS if TAP_INDEX[t] <= TAP_INDEX[args.layer])

    def encode(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return net.encode(x, taps)

    def encoder(x: torch.Tensor) -> torch.Tensor:
        return net.encode(x, (args.layer,))[args.layer]

    paintings = [load_style(p, 256)[0] for p in find_images(args.styles)] if args.style_weight else []
    net, decoder = net.to(memory_format=torch.channels_last), decoder.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(decoder.parameters(), lr=args.lr)
    stream = ImageStream(find_images(DATA / "content-train"), args.size, args.batch_size, seed=0)
    t0 = time.perf_counter()
    with (out / "losses.csv").open("w", newline="") as f:
        log = csv.writer(f)
        log.writerow(["step", "loss", "seconds"])  # identity loss alone without --style-weight
        for step in range(args.steps):
            photo = stream.batch(step).contiguous(memory_format=torch.channels_last)
            for group in opt.param_groups:
                group["lr"] = args.lr * min(1.0, (step + 1) / 100)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                with torch.no_grad():
                    feats = encoder(photo)
                loss = losses.relative_mse(decoder(feats).float(), photo)
                if args.style_weight:
                    gen = torch.Generator().manual_seed(step)
                    pick = torch.randint(0, len(paintings), (photo.shape[0],), generator=gen)
                    style = torch.stack([random_crop(paintings[int(i)], args.size, gen) for i in pick])
                    with torch.no_grad():
                        fs = encode(style)
                        target = adain(feats, *mean_std(fs[args.layer]))
                    fo = encode(decoder(target).float())
                    loss = (loss + losses.relative_mse(fo[args.layer], target)
                            + args.style_weight * losses.mean_std_style_loss(fo, fs, taps))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            log.writerow([step + 1, f"{loss.item():.5f}", f"{time.perf_counter() - t0:.1f}"])
    decoder.eval()
    errors = []
    with torch.inference_mode():
        for name in ("kodim23.png", "kodim05.png", "kodim15.png", "kodim10.png"):
            photo = load_tensor(DATA / "content-eval" / name, 256)
            photo = photo[..., : photo.shape[-2] // 8 * 8, : photo.shape[-1] // 8 * 8]
            rebuilt = decoder(encoder(photo)).clamp(0, 1)
            errors.append(float((rebuilt - photo).pow(2).mean()))
            if name == "kodim23.png":
                from torchvision.utils import save_image

                pictures = [photo, rebuilt]
                for painting in ("starry_night.jpg", "the_scream.jpg", "great_wave.jpg") if args.style_weight else ():
                    stats = mean_std(encoder(load_style(DATA / "styles" / painting, 256)))
                    pictures.append(decoder(adain(encoder(photo), *stats)).clamp(0, 1))
                save_image(torch.cat(pictures), out / "kodim23.png", nrow=len(pictures))
    print(f"{args.layer}: {args.steps} steps in {time.perf_counter() - t0:.0f} s; Kodak MSE at 256 px "
          f"{sum(errors) / len(errors):.4f} ({', '.join(f'{e:.4f}' for e in errors)})")


if __name__ == "__main__":
    main()
