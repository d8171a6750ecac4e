"""Ulyanov et al. 2016, "Instance Normalization: The Missing Ingredient for Fast Stylization".

Johnson's generator with every BatchNorm replaced by instance normalisation, used at train and
test time alike (see ``layers.InstanceNorm``).
"""

from __future__ import annotations

from fauve.models.johnson import JohnsonNet


class UlyanovNet(JohnsonNet, method="ulyanov"):
    """Johnson's transformer with instance normalisation (one style per model)."""

    def __init__(self, width: float = 1.0, upsample: str = "nearest", residual_output: bool = False, **meta) -> None:
        super().__init__(width=width, upsample=upsample, norm="instance", residual_output=residual_output, **meta)
