"""Huang & Belongie 2017, "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization".

A fixed VGG16 encoder up to relu4_1 (its weights stored inside the model file, so inference needs
nothing else), AdaIN(x, y) = σ(y)(x − μ(x))/σ(x) + μ(y) on the encoded content with the style's
statistics, and a decoder that mirrors the encoder with nearest upsampling in place of pooling and
no normalisation layers (``upsample="bilinear"``, not in the paper: bilinear instead of nearest, against
the fine lattice pattern nearest leaves on strongly textured styles; same weights).

``layer="relu3_1"`` (not in the paper) puts AdaIN one stage earlier: 256-channel statistics at ¼ resolution,
the encoder stops there and the decoder is the paper's from its 256 → 128 convolution on. It keeps more of
the photo and paints smaller strokes; with the edge-tuned HED VGG16 that is the only loss network here, a
relu4_1 decoder could not rebuild photos in a CPU budget (docs/training.md, session 14).

Test-time controls: α trade-off, interpolation between styles, and spatial masks (a different style per region).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import vgg16

from fauve.models.base import StyleModel
from fauve.models.layers import ConvLayer, adain, channels, mean_std
from fauve.vgg import TAP_INDEX, Preprocess, load_vgg16_features

ENCODER_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
LAYER_CHANNELS = {"relu3_1": 256, "relu4_1": 512}  # where AdaIN may sit, and its number of statistics


def encoder_taps(layer: str) -> tuple[str, ...]:
    """The encoder's relu*_1 taps up to ``layer`` (the style loss's layers)."""
    return ENCODER_TAPS[: ENCODER_TAPS.index(layer) + 1]


def _decoder(width: float, upsample: str, layer: str = "relu4_1") -> nn.Sequential:
    if upsample not in ("nearest", "bilinear"):
        raise ValueError(f"unknown upsampling {upsample!r}; use nearest or bilinear")
    c256, c128, c64 = channels(256, width), channels(128, width), channels(64, width)
    up = nn.Upsample(scale_factor=2, mode=upsample, **({"align_corners": False} if upsample == "bilinear" else {}))
    layers: list[nn.Module] = []
    if layer == "relu4_1":
        layers += [ConvLayer(512, c256, 3), nn.ReLU(), up]
        layers += [ConvLayer(c256, c256, 3), nn.ReLU(), ConvLayer(c256, c256, 3), nn.ReLU()]
    layers += [ConvLayer(c256 if layer == "relu4_1" else 256, c128, 3), nn.ReLU(), up]
    layers += [ConvLayer(c128, c128, 3), nn.ReLU(), ConvLayer(c128, c64, 3), nn.ReLU(), up]
    layers += [ConvLayer(c64, c64, 3), nn.ReLU(), ConvLayer(c64, 3, 3)]
    return nn.Sequential(*layers)


class AdaINNet(StyleModel, method="adain"):
    """VGG16 encoder (to relu4_1, or relu3_1) + AdaIN + mirrored decoder; any style image at inference."""

    multi_style = True
    accepts_style_image = True
    # VGG's convolutions pad with zeros, so the encoder's border features differ from the interior's and the decoder
    # paints them as a coloured fringe ~8 px wide; 16 px of mirrored photo take it outside (docs/training.md, session 18).
    border_margin = 16
    style_buffers = ("style_means", "style_stds")
    arch_keys = StyleModel.arch_keys + ("layer",)

    def __init__(self, width: float = 1.0, vgg_source: str = "hed", num_styles: int = 0, upsample: str = "nearest",
                 layer: str = "relu4_1", **meta) -> None:
        super().__init__(num_styles=num_styles, **meta)
        self.width, self.vgg_source, self.upsample, self.layer = width, vgg_source, upsample, layer
        if layer not in LAYER_CHANNELS:
            raise ValueError(f"unknown AdaIN layer {layer!r}; use {' or '.join(LAYER_CHANNELS)}")
        self.size_multiple = 8 if layer == "relu4_1" else 4  # one 2× pooling per stage before the layer
        self.preprocess = Preprocess(vgg_source)
        self.encoder = vgg16(weights=None).features[: TAP_INDEX[layer] + 1]
        self.encoder.requires_grad_(False)
        self.decoder = _decoder(width, upsample, layer)
        # Mean/std at ``layer`` of the named styles, so catalog styles need no image at inference.
        n, c = max(num_styles, 1), LAYER_CHANNELS[layer]
        self.register_buffer("style_means", torch.zeros(n, c))
        self.register_buffer("style_stds", torch.ones(n, c))

    def load_encoder_weights(self) -> None:
        """Fill the encoder from the VGG16 source named in the config (training time only)."""
        features, _ = load_vgg16_features(self.vgg_source, depth=TAP_INDEX[self.layer] + 1)
        self.encoder.load_state_dict(features.state_dict())

    def encode(self, rgb: torch.Tensor, taps: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """The encoder's activations at ``taps`` (default: the AdaIN layer), stopping at the deepest."""
        by_index = {TAP_INDEX[t]: t for t in (taps or (self.layer,))}
        stop = max(by_index)
        out: dict[str, torch.Tensor] = {}
        x = self.preprocess(rgb)
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if i in by_index:
                out[by_index[i]] = x
            if i == stop:
                break
        return out

    def style_stats(self, style_image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std at the AdaIN layer of a style image, each (B, 512) (relu3_1: (B, 256))."""
        mean, std = mean_std(self.encode(style_image)[self.layer])
        return mean.flatten(1), std.flatten(1)

    @torch.no_grad()
    def set_named_styles(self, style_images: list[torch.Tensor]) -> None:
        stats = [self.style_stats(img.to(self.style_means.device)) for img in style_images]
        self.style_means.copy_(torch.cat([m for m, _ in stats]))
        self.style_stds.copy_(torch.cat([s for _, s in stats]))

    def forward(
        self,
        x: torch.Tensor,
        style_weights: torch.Tensor | None = None,
        style_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
        alpha: float = 1.0,
        masks: torch.Tensor | None = None,
        content_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Stylize ``x`` (RGB in [0, 1]).

        - ``style_stats``: (means, stds), each (K, C), for K style images; default: the named styles.
          C = 512 at relu4_1, 256 at relu3_1.
        - ``style_weights``: (K,) interpolation weights (convex combination of the AdaIN outputs).
        - ``masks``: (K, H, W) soft masks in [0, 1], one per style (spatial control); overrides weights.
        - ``alpha``: content–style trade-off, t = α·AdaIN(f(c), s) + (1 − α)·f(c).
        - ``content_stats``: (mean, std) of the content at the AdaIN layer, each (C,), used instead of the
          input's own (tiling: every tile is normalised with the whole image's statistics).
        """
        means, stds = style_stats if style_stats is not None else (self.style_means, self.style_stds)
        k = means.shape[0]
        content = self.encode(x)[self.layer]
        if content_stats is not None:
            content_stats = tuple(v.to(content.dtype).view(1, -1, 1, 1) for v in content_stats)
        if masks is None:
            if style_weights is None:  # the first named style; built on the device (CUDA graph capture allows no host copy)
                style_weights = torch.eye(k, device=x.device)[0]
            w = style_weights.reshape(-1, k)[0].to(content.dtype)
            mean = (w[:, None] * means.to(content.dtype)).sum(0)
            std = (w[:, None] * stds.to(content.dtype)).sum(0)
            t = adain(content, mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1), content_stats)
        else:
            m = F.interpolate(masks[None].to(content.dtype), size=content.shape[-2:], mode="bilinear", align_corners=False)[0]
            t = sum(
                m[i][None, None] * adain(content, means[i].view(1, -1, 1, 1).to(content.dtype), stds[i].view(1, -1, 1, 1).to(content.dtype), content_stats)
                for i in range(k)
            )
        t = alpha * t + (1.0 - alpha) * content
        return self.decoder(t)
