"""Dumoulin et al.'s cheap extension: add a style to a trained CIN model by training only new γ, β rows.

Everything else stays frozen, and the other rows are restored after every optimizer step, so the
other styles stay bit-identical. A painting whose style name the model already has is trained again
in place: its rows start from their trained values (e.g. to fine-tune one style at a larger crop
size with --lattice-weight without touching the other fifteen).
"""

from __future__ import annotations

from pathlib import Path

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
    known = [n for n in method.style_names if n in old.style_names]
    if known and len(known) != k:
        raise FauveError(f"{cfg.add_style_from} already has {known}, not {[n for n in method.style_names if n not in known]}.",
                         "Add new styles and re-train existing ones in two separate runs.")
    if known:  # re-train these styles' rows in place
        rows = [old.style_names.index(n) for n in method.style_names]
        model, n_total = old, n_old
    else:
        rows = list(range(n_old, n_old + k))
        n_total = n_old + k
        model = build_model(
            "dumoulin", width=old.width, upsample=old.upsample, residual_output=old.residual_output, num_styles=n_total,
            style_names=old.style_names + method.style_names,
        )
        state = old.state_dict()
        for name, tensor in list(state.items()):
            if name.endswith(".gamma") or name.endswith(".beta"):
                state[name] = torch.cat([tensor, tensor.mean(0, keepdim=True).expand(k, -1)])
        model.load_state_dict(state)
    model.requires_grad_(False)
    trained = torch.zeros(n_total, 1, dtype=torch.bool)
    trained[rows] = True
    cin = [m for m in model.modules() if isinstance(m, ConditionalInstanceNorm)]
    trainable = []
    for layer in cin:
        for p in (layer.gamma, layer.beta):
            p.requires_grad_(True)
            p.register_hook(lambda g, mask=trained: g * mask.to(g.device))
            trainable.append(p)
    model = model.to(device)
    frozen_rows = [(p, p.detach().clone()) for p in trainable]

    def restore() -> None:  # Adam's momentum would still move rows whose gradient is zero
        with torch.no_grad():
            for p, before in frozen_rows:
                p.copy_(torch.where(trained.to(p.device), p, before))

    method.style_rows = rows
    sources = list(old.style_sources or old.style_names)
    added = [Path(p).name for p in cfg.styles]
    if known:
        for row, name in zip(rows, added):
            sources[row] = name
    else:
        sources += added
    method.style_sources = sources
    method.total_styles = n_total
    cfg.width, cfg.upsample = old.width, old.upsample
    return model, trainable, restore
