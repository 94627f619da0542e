"""Dream-in-4D's total variation of rendered displacement videos (deformation representation, weight 1000)."""

from __future__ import annotations

from torch import Tensor

from ...fields.deformation_losses import DisplacementTVConfig, displacement_tv
from .base import GuidanceTerm, StepContext


class DisplacementTV(GuidanceTerm):
    """Spatial and temporal TV of the SDS clip's composited displacements [F, H, W, 3]: smooth, jitter-free motion."""

    name = "displacement_tv"

    def __init__(self, config: DisplacementTVConfig, bound: float):
        """bound: the scene bound of the renders (displacements are measured in unit-cube units)."""
        super().__init__()
        self.config, self.bound = config, bound

    @property
    def needs_displacement(self) -> bool:
        return self.config.weight > 0

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        if not ctx.sds or self.config.weight <= 0:
            return {}
        return {self.name: self.config.weight * displacement_tv(ctx.render["displacement"], self.bound)}
