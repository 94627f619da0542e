"""Reference-view reconstruction (SPEC 6, paper Eq. 4): colour, silhouette and depth of the input image."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .. import losses as L
from .base import GuidanceTerm, StepContext


@dataclass(frozen=True)
class ReconstructionConfig:
    """Lambdas of the reference-view losses."""

    rgb: float = 5.0
    """Colour: 5 * MSE(mask * pred, mask * gt)."""
    mask: float = 0.5
    """Opacity vs mask."""
    depth: float = 0.01
    """Depth: (1 - pearson) / 2 over masked pixels (paper: 0.001)."""


class Reconstruction(GuidanceTerm):
    """On reconstruction steps the step's render is the reference view; with `on_clip_start` (the dynamic stages'
    'clip_start' rule, paper Eq. 8) it also renders the reference view at t = 0 on SDS steps whose clip starts
    there."""

    name = "reconstruction"

    def __init__(self, config: ReconstructionConfig, size: int, on_clip_start: bool = False):
        """size: side of the reference-view renders (the stage's reference_size)."""
        super().__init__()
        self.config, self.size, self.on_clip_start = config, size, on_clip_start

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        if not ctx.sds:
            out = ctx.render
        elif self.on_clip_start and ctx.at_reference_time:
            out = ctx.render_view(ctx.reference_view, self.size)
        else:
            return {}
        w, t = self.config, ctx.targets
        losses = {
            "rgb": w.rgb * L.rgb_loss(out["rgb"], t["rgb"], t["mask"]),
            "mask": w.mask * L.mask_loss(out["opacity"], t["mask"]),
        }
        if t["depth"] is not None and w.depth > 0:
            losses["depth"] = w.depth * L.depth_loss(out["depth"], t["depth"], t["mask"])
        return losses
