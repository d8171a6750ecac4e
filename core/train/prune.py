"""Start a slimmer generator from a wider trained one (``fauve train … --init MODEL --width W``).

Each channel of the transformer (Johnson's c9s1, d, d, 5×R, u, u, c9s1 body) is ranked by the scale
its normalisation layer gives it, |γ| averaged over the styles (Liu et al. 2017, "Learning Efficient
Convolutional Networks through Network Slimming": a channel whose γ is small contributes little),
and the most important ones are kept; every conv keeps the rows of its kept output channels and the
columns of its kept input channels. Channels that share a tensor are ranked together: the residual
trunk (the third down layer and every block's second conv add into it) is one group. The pruned net
computes a degraded version of the wide one's picture, a much better start for distillation
(``--teacher``) than random weights.
"""

from __future__ import annotations

import torch

from fauve.errors import FauveError

_NORM_LEAVES = ("gamma", "beta", "weight", "bias", "running_mean", "running_var")


def _groups(num_residual: int) -> dict[str, list[str]]:
    """Channel groups → the norm layers (state-dict prefixes under ``net.``) that scale them."""
    groups = {"d0": ["down_norms.0"], "d1": ["down_norms.1"], "u0": ["up_norms.0"], "u1": ["up_norms.1"],
              "trunk": ["down_norms.2"] + [f"residual.{b}.norm2" for b in range(num_residual)]}
    groups.update({f"r{b}": [f"residual.{b}.norm1"] for b in range(num_residual)})
    return groups


def _convs(num_residual: int) -> dict[str, tuple[str | None, str | None]]:
    """Conv prefix → (output group, input group); None: the RGB picture (never pruned)."""
    convs = {"down.0.conv": ("d0", None), "down.1.conv": ("d1", "d0"), "down.2.conv": ("trunk", "d1"),
             "up.0.conv.conv": ("u0", "trunk"), "up.1.conv.conv": ("u1", "u0"), "out.conv": (None, "u1")}
    for b in range(num_residual):
        convs[f"residual.{b}.conv1.conv"] = (f"r{b}", "trunk")
        convs[f"residual.{b}.conv2.conv"] = ("trunk", f"r{b}")
    return convs


def _scale(state: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """|γ| per channel of the norm layer at ``prefix`` (mean over styles for a conditional norm)."""
    for leaf in ("gamma", "weight"):
        if f"{prefix}.{leaf}" in state:
            g = state[f"{prefix}.{leaf}"].float().abs()
            return g.mean(0) if g.dim() == 2 else g
    raise KeyError(f"no scale for the norm layer {prefix}")


def prune_state(wide: dict[str, torch.Tensor], slim: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``wide``'s weights cut down to ``slim``'s shapes (both TransformerNet state dicts, keys ``net.…``)."""
    num_residual = len({k.split(".")[2] for k in slim if k.startswith("net.residual.")})
    keep: dict[str | None, torch.Tensor | None] = {None: None}
    for group, norms in _groups(num_residual).items():
        importance = sum(_scale(wide, f"net.{n}") for n in norms)
        size = _scale(slim, f"net.{norms[0]}").numel()
        keep[group] = importance.argsort(descending=True)[:size].sort().values
    out: dict[str, torch.Tensor] = {}
    for conv, (group_out, group_in) in _convs(num_residual).items():
        w, b = wide[f"net.{conv}.weight"], wide[f"net.{conv}.bias"]
        if keep[group_out] is not None:
            w, b = w[keep[group_out]], b[keep[group_out]]
        if keep[group_in] is not None:
            w = w[:, keep[group_in]]
        out[f"net.{conv}.weight"], out[f"net.{conv}.bias"] = w.clone(), b.clone()
    for group, norms in _groups(num_residual).items():
        for norm in norms:
            for leaf in _NORM_LEAVES:
                key = f"net.{norm}.{leaf}"
                if key in wide:
                    out[key] = wide[key][..., keep[group]].clone()
    for key, value in slim.items():  # e.g. BatchNorm's num_batches_tracked
        if key not in out and key in wide and wide[key].shape == value.shape:
            out[key] = wide[key].clone()
    wrong = [k for k in slim if k not in out or out[k].shape != slim[k].shape]
    if wrong:
        raise FauveError(f"Cannot prune to this width: {len(wrong)} tensors do not fit (e.g. {wrong[0]}).",
                         "Prune johnson, ulyanov or dumoulin models to a smaller --width.")
    return out
