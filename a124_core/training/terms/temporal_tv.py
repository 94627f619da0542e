"""Temporal total variation of the 4D grid (paper Eq. 2, SPEC 3)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .base import GuidanceTerm, StepContext


@dataclass(frozen=True)
class TemporalTVConfig:
    """Smoothness of the time knots."""

    weight: float = 0.1
    """lambda_TV."""
    points: int = 100_000
    """Uniform points the estimate averages over (a 4D grid's field config keeps it)."""

    def __post_init__(self) -> None:
        if self.points < 1:
            raise ValueError(f"temporal_tv.points must be >= 1, got {self.points}")


class TemporalTV(GuidanceTerm):
    """mean_x sum_i |V_i(x) - V_{i+1}(x)|^2 over fresh random points every step."""

    name = "temporal_tv"

    def __init__(self, config: TemporalTVConfig):
        super().__init__()
        self.config = config

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        if self.config.weight <= 0:
            return {}
        return {self.name: self.config.weight * ctx.field.temporal_tv(generator=ctx.generator)}
