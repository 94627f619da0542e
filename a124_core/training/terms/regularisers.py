"""Geometry regularisers of every render (SPEC 6): opacity entropy, orientation, normal-image smoothness."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .. import losses as L
from .base import GuidanceTerm, StepContext


@dataclass(frozen=True)
class RegularisersConfig:
    """Lambdas of the regularisers (0 switches one off)."""

    opacity_entropy: float = 1e-3
    """Binary entropy of the opacity, ramped in over the first half of the stage."""
    orientation: float = 1e-2
    """DreamFusion orientation loss (normals facing away from the camera)."""
    normal_tv: float = 0.5
    """Total variation of the rendered normal image."""
    normal_blur: float = 0.5
    """MSE of the normal image to its blurred copy."""


class Regularisers(GuidanceTerm):
    """Applied to the step's render, whichever view it shows."""

    name = "regularisers"

    def __init__(self, config: RegularisersConfig, steps: int):
        """steps: the stage's length (the opacity entropy ramps in over its first half)."""
        super().__init__()
        self.config, self.steps = config, steps

    @property
    def needs_normals(self) -> bool:
        c = self.config
        return c.orientation > 0 or c.normal_tv > 0 or c.normal_blur > 0

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        w, out = self.config, ctx.render
        reg: dict[str, Tensor] = {}
        if w.opacity_entropy > 0:
            ramp = L.ramp(ctx.step, self.steps)
            reg["opacity_entropy"] = w.opacity_entropy * ramp * L.opacity_entropy(out["opacity"])
        if "orientation" in out and w.orientation > 0:
            reg["orientation"] = w.orientation * L.orientation_loss(out["orientation"])
        if "normal_image" in out and (w.normal_tv > 0 or w.normal_blur > 0):
            image = out["normal_image"]
            reg["normal_smooth"] = w.normal_tv * L.normal_tv(image) + w.normal_blur * L.normal_blur_loss(image)
        return reg
