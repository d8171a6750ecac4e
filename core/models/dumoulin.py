"""Dumoulin et al. 2017, "A Learned Representation for Artistic Style" (ICLR; arXiv 2016).

One network for N styles: every norm layer is a conditional instance norm with per-style γ, β
tables [N×C]; everything else is shared. A weight vector over styles mixes them (convex combination
of γ and β). A new style is added by training only a new row of each table.
"""

from __future__ import annotations

import torch

from fauve.models.base import StyleModel
from fauve.models.johnson import TransformerNet
from fauve.models.layers import ConditionalInstanceNorm


class DumoulinNet(StyleModel, method="dumoulin"):
    """Johnson's transformer with conditional instance normalisation (N styles in one net)."""

    size_multiple = 4
    multi_style = True

    def __init__(self, width: float = 1.0, upsample: str = "nearest", num_styles: int = 1, residual_output: bool = False, **meta) -> None:
        super().__init__(num_styles=num_styles, **meta)
        self.width, self.upsample, self.residual_output = width, upsample, residual_output
        self.net = TransformerNet(width, "conditional", upsample, num_styles=num_styles, residual_output=residual_output)

    def cin_layers(self) -> list[ConditionalInstanceNorm]:
        return [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm)]

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor | None = None) -> torch.Tensor:
        """``style_weights``: (B, N) or (N,) weights over styles; None means style 0."""
        if style_weights is None:
            style_weights = torch.eye(self.num_styles, device=x.device)[0]  # no host copy: CUDA graphs
        if style_weights.dim() == 1:
            style_weights = style_weights.expand(x.shape[0], -1)
        if style_weights.shape[-1] != self.num_styles:
            raise ValueError(f"style weights have {style_weights.shape[-1]} entries; this model has {self.num_styles} styles")
        return self.net(x, style_weights.to(x.device))
