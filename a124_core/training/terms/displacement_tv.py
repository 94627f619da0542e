"""Dream-in-4D's total variation of rendered displacement videos (deformation representation)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from ...fields.deformation_losses import DisplacementTVConfig, displacement_tv
from .base import GuidanceTerm, StepContext


class DisplacementTV(GuidanceTerm):
    """Spatial and temporal TV of the SDS clip's composited displacements [F, H, W, 3]: smooth, jitter-free motion.

    The weight is `weight_at(progress)` when given (Dream-in-4D's video term: tied to the phase's render size, 1000 at
    a quarter of the prior's size, 10 at full size), else the config's (1000, beside Animate124's video SDS)."""

    name = "displacement_tv"

    def __init__(self, config: DisplacementTVConfig, bound: float, weight_at: Callable[[float], float] | None = None):
        """bound: the scene bound of the renders (displacements are measured in unit-cube units)."""
        super().__init__()
        self.config, self.bound, self.weight_at = config, bound, weight_at

    def weight(self, progress: float) -> float:
        return self.weight_at(progress) if self.weight_at is not None else self.config.weight

    @property
    def needs_displacement(self) -> bool:
        return self.weight_at is not None or self.config.weight > 0

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        weight = self.weight(ctx.progress)
        if not ctx.sds or weight <= 0:
            return {}
        return {self.name: weight * displacement_tv(ctx.render["displacement"], self.bound)}
