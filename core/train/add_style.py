"""Dumoulin et al.'s cheap extension: add a style to a trained CIN model by training only new γ, β rows.

Everything else stays frozen, and the existing rows are restored after every optimizer step, so
the old styles stay bit-identical.
"""

from __future__ import annotations

import torch

from fauve.errors import FauveError
from fauve.models import build_model, load_model
from fauve.models.layers import ConditionalInstanceNorm


def extend_dumoulin(cfg, method, device: torch.device):
    if cfg.method != "dumoulin":
        raise FauveError("--add-style works only with `fauve train dumoulin`.", "Conditional instance norm is what makes a style cheap to add.")
    old = load_model(cfg.add_style_from)
    if old.method != "dumoulin":
        raise FauveError(f"{cfg.add_style_from} is a {old.method} model, not dumoulin.", "Pass --from a folder made by `fauve train dumoulin`.")
    n_old, k = old.num_styles, len(method.styles)
    model = build_model(
        "dumoulin", width=old.width, upsample=old.upsample, residual_output=old.residual_output, num_styles=n_old + k,
        style_names=old.style_names + method.style_names,
    )
    state = old.state_dict()
    for name, tensor in list(state.items()):
        if name.endswith(".gamma") or name.endswith(".beta"):
            state[name] = torch.cat([tensor, tensor.mean(0, keepdim=True).expand(k, -1)])
    model.load_state_dict(state)
    model.requires_grad_(False)
    cin = [m for m in model.modules() if isinstance(m, ConditionalInstanceNorm)]
    trainable = []
    for layer in cin:
        for p in (layer.gamma, layer.beta):
            p.requires_grad_(True)
            p.register_hook(lambda g, n=n_old: torch.cat([torch.zeros_like(g[:n]), g[n:]]))
            trainable.append(p)
    model = model.to(device)
    frozen_rows = [(p, p.detach()[:n_old].clone()) for p in trainable]

    def restore() -> None:
        with torch.no_grad():
            for p, rows in frozen_rows:
                p[:n_old].copy_(rows)

    method.style_offset = n_old
    method.total_styles = n_old + k
    cfg.width, cfg.upsample = old.width, old.upsample
    return model, trainable, restore
