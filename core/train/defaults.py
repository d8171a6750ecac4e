"""Per-method training defaults (torch-free, so the CLI can show them without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass

JOHNSON_STYLE = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
ADAIN_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


@dataclass(frozen=True)
class MethodDefaults:
    lr: float
    batch_size: int
    iters: int
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    content_weight: float
    style_weight: float
    tv_weight: float
    width: float
    paper: str


DEFAULTS: dict[str, MethodDefaults] = {
    # Johnson et al.: Adam 1e-3, batch 4, 40k iterations at 256², content relu2_2 (their Lua code: relu3_3).
    "johnson": MethodDefaults(1e-3, 4, 40_000, ("relu2_2",), JOHNSON_STYLE, 1.0, 3.0, 0.0, 1.0, "arXiv:1603.08155"),
    # Ulyanov et al.: the same generator with IN; texture_nets' "params that work" use lr 1e-2 on batch 4; we keep 1e-3 (stabler on small batches).
    "ulyanov": MethodDefaults(1e-3, 4, 40_000, ("relu2_2",), JOHNSON_STYLE, 1.0, 3.0, 0.0, 1.0, "arXiv:1607.08022"),
    # Dumoulin et al. (magenta): Adam 1e-3, batch 16, 40k steps, content vgg conv3 (relu3_3), style conv1..conv4.
    "dumoulin": MethodDefaults(1e-3, 4, 40_000, ("relu3_3",), JOHNSON_STYLE, 1.0, 3.0, 0.0, 1.0, "arXiv:1610.07629"),
    # Zhang & Dana: Adam 1e-3, batch 4, 2 epochs of COCO, content relu2_2, style weight 5 (their scale).
    "msgnet": MethodDefaults(1e-3, 4, 40_000, ("relu2_2",), JOHNSON_STYLE, 1.0, 3.0, 0.0, 1.0, "arXiv:1703.06953"),
    # Huang & Belongie: Adam 1e-4, batch 8, 160k iterations, content relu4_1, style mean/std relu1_1..relu4_1.
    "adain": MethodDefaults(1e-4, 8, 160_000, ("relu4_1",), ADAIN_STYLE, 1.0, 2.0, 0.0, 1.0, "arXiv:1703.06868"),
}
