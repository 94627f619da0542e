"""Text-to-video score distillation over a rendered clip (steps 2-3, paper Eq. 6)."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dfield
from typing import Any

from torch import Tensor

from ...guidance.sds import SDSConfig, score_distillation, scoring_size
from ...priors.base import PriorKind
from .base import GuidanceTerm, StepContext


@dataclass(frozen=True)
class VideoSDSConfig:
    """SDS of the video-text prior."""

    sds: SDSConfig = dfield(
        default_factory=lambda: SDSConfig(guidance_scale=100.0, t_range=(0.02, 0.98), grad_clip=1.0)
    )
    """CFG 100, one t in [0.02, 0.98] per clip, gradient clipped at 1; frames at the prior's size."""
    weight: float = 1.0
    """lambda of the video SDS loss."""


class VideoSDS(GuidanceTerm):
    """All F frames of the step's clip, in time order, under the motion prompt (no view words: the camera moves)."""

    name = "video"
    kind = PriorKind.VIDEO_TEXT

    def __init__(self, prior: Any, config: VideoSDSConfig, prompt: str, negative: str = "", suffix: str = ""):
        """prompt: the motion prompt; suffix: the stage's quality words appended to it."""
        super().__init__(prior)
        if not prompt.strip():
            raise ValueError("The video prior needs a motion prompt, e.g. 'a panda is dancing'")
        self.config, self.prompt, self.negative = config, prompt + suffix, negative
        self.condition: Any = None

    def build(self) -> None:
        self.condition = self.prior.text_condition(self.prompt, self.negative)

    def render_aspect(self) -> int | tuple[int, int]:
        return scoring_size(self.config.sds, self.prior)

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        if not ctx.sds:
            return {}
        g = ctx.generator
        sds = score_distillation(self.prior, ctx.images, self.condition, self.config.sds, 1.0, ctx.progress, g)
        return {self.name: self.config.weight * sds["loss_sds"]}
