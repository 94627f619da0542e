"""SD1.5 score distillation with view-dependent prompts (static stage, SPEC 5)."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dfield
from typing import Any

from torch import Tensor

from ...guidance.sds import SDSConfig, score_distillation
from ...priors.base import PriorKind
from .base import GuidanceTerm, StepContext


@dataclass(frozen=True)
class TextSDSConfig:
    """SDS of the image-text prior."""

    sds: SDSConfig = dfield(default_factory=lambda: SDSConfig(guidance_scale=100.0, t_range=(0.2, 0.6)))
    """CFG 100, t in [0.2, 0.6], renders at the prior's 512."""
    weight: float = 1.0
    """lambda of the 2D SDS loss."""


class TextSDS(GuidanceTerm):
    """Every SDS render scored under "<prompt>, front/side/back view" blended by its azimuth to the reference."""

    name = "sd"
    kind = PriorKind.IMAGE_TEXT

    def __init__(
        self,
        prior: Any,
        config: TextSDSConfig,
        prompt: str,
        negative: str = "",
        suffix: str = "",
        reference_azimuth_deg: float = 0.0,
    ):
        """prompt: the appearance prompt; suffix: the stage's quality words appended to it; reference_azimuth_deg:
        the azimuth the 'front view' words belong to (the reference camera's)."""
        super().__init__(prior)
        if not prompt.strip():
            raise ValueError("The 2D prior needs an appearance prompt, e.g. 'a high-resolution DSLR image of a panda'")
        self.config, self.prompt, self.negative = config, prompt + suffix, negative
        self.reference_azimuth_deg = reference_azimuth_deg
        self.condition: Any = None

    def build(self) -> None:
        self.condition = self.prior.view_dependent_condition(self.prompt, self.negative)

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        if not ctx.sds:
            return {}
        azimuth = ctx.view.cameras.azimuth_deg - self.reference_azimuth_deg
        cond = self.condition.at_azimuth(azimuth)
        sds = score_distillation(self.prior, ctx.images, cond, self.config.sds, 1.0, ctx.progress, ctx.generator)
        return {self.name: self.config.weight * sds["loss_sds"]}
