"""Johnson et al. 2016, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution".

The image transformation network: c9s1-32, d64, d128, 5×R128, u64, u32, c9s1-3, with BatchNorm
as in the paper. ``upsample="transposed"`` is the paper's fractionally-strided conv; the default
``"nearest"`` (nearest ×2 + conv) avoids its checkerboard artefacts, and ``"bilinear"`` (bilinear ×2
+ conv) also the finer lattice patterns that nearest can still give on strongly textured styles. ``width`` multiplies every channel
count (Johnson's instance-norm models halve them; magenta calls it alpha).

``residual_output=True`` (not in the paper) adds the input to the output, ŷ = x + T(x), so an
untrained network starts as the identity: content loss 0 and only style left to learn. On a small
training budget (our CPU recipe) this reaches a readable photo in far fewer iterations.
"""

from __future__ import annotations

import torch
from torch import nn

from fauve.models.base import StyleModel
from fauve.models.layers import ConvLayer, TransposedConv, UpsampleConv, channels, make_norm


class ResidualBlock(nn.Module):
    """R: conv3 → norm → ReLU → conv3 → norm, plus the identity (He et al. 2016)."""

    def __init__(self, ch: int, norm: str, num_styles: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(ch, ch, 3)
        self.norm1 = make_norm(norm, ch, num_styles)
        self.conv2 = ConvLayer(ch, ch, 3)
        self.norm2 = make_norm(norm, ch, num_styles)

    def forward(self, x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(x), w))
        return x + self.norm2(self.conv2(y), w)


class TransformerNet(nn.Module):
    """The generator body shared by Johnson (BN), Ulyanov (IN) and Dumoulin (CIN)."""

    def __init__(self, width: float, norm: str, upsample: str, num_styles: int = 1, num_residual: int = 5,
                 residual_output: bool = False) -> None:
        super().__init__()
        self.residual_output = residual_output
        c1, c2, c3 = channels(32, width), channels(64, width), channels(128, width)
        self.down = nn.ModuleList([ConvLayer(3, c1, 9), ConvLayer(c1, c2, 3, 2), ConvLayer(c2, c3, 3, 2)])
        self.down_norms = nn.ModuleList([make_norm(norm, c, num_styles) for c in (c1, c2, c3)])
        self.residual = nn.ModuleList([ResidualBlock(c3, norm, num_styles) for _ in range(num_residual)])
        if upsample in ("nearest", "bilinear"):
            self.up = nn.ModuleList([UpsampleConv(c3, c2, 3, mode=upsample), UpsampleConv(c2, c1, 3, mode=upsample)])
        elif upsample == "transposed":
            self.up = nn.ModuleList([TransposedConv(c3, c2), TransposedConv(c2, c1)])
        else:
            raise ValueError(f"unknown upsampling {upsample!r}; use nearest, bilinear or transposed")
        self.up_norms = nn.ModuleList([make_norm(norm, c, num_styles) for c in (c2, c1)])
        self.out = ConvLayer(c1, 3, 9)
        if residual_output:  # start exactly at the identity
            nn.init.zeros_(self.out.conv.weight)
            nn.init.zeros_(self.out.conv.bias)

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor | None = None) -> torch.Tensor:
        image = x
        for conv, norm in zip(self.down, self.down_norms):
            x = torch.relu(norm(conv(x), style_weights))
        for block in self.residual:
            x = block(x, style_weights)
        for conv, norm in zip(self.up, self.up_norms):
            x = torch.relu(norm(conv(x), style_weights))
        return image + self.out(x) if self.residual_output else self.out(x)


class JohnsonNet(StyleModel, method="johnson"):
    """Johnson et al. 2016 feed-forward style network (one style per model, BatchNorm)."""

    size_multiple = 4

    def __init__(self, width: float = 1.0, upsample: str = "nearest", norm: str = "batch", residual_output: bool = False, **meta) -> None:
        super().__init__(**meta)
        self.width, self.upsample, self.norm, self.residual_output = width, upsample, norm, residual_output
        self.net = TransformerNet(width, norm, upsample, residual_output=residual_output)

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor | None = None) -> torch.Tensor:
        """RGB in [0, 1] (sides a multiple of 4) → stylized RGB (unclamped; [0, 1] after training)."""
        return self.net(x)
