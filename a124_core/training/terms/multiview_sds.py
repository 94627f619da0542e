"""MVDream's multi-view SDS (Dream-in-4D's L_3D): each group of views of the step scored jointly, one camera each.

The static stage's multi-view sampler (`static_stage.MultiViewViews`) draws groups of `num_views` views around a
random azimuth (`multiview_cameras`); this term turns the rendered cameras into MVDream's 4x4 matrices (the
convention is written out in `multiview_cameras`) and applies the x0-reconstruction SDS of
`guidance.multiview_sds`. Where an object's front lies for MVDream (`front_azimuth_deg`) is where the 2D prior's
"front view" words go in text mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dfield
from typing import Any

from torch import Tensor

from ...guidance.multiview_sds import MultiViewSDSConfig, multiview_sds
from ...multiview_cameras import MultiViewCameraConfig, mvdream_camera_matrices
from ...priors.base import PriorKind
from .base import GuidanceTerm, StepContext


@dataclass(frozen=True)
class MultiViewTermConfig:
    """The multi-view prior's SDS, its cameras and its weight (Dream-in-4D's static stage, MVDream-threestudio)."""

    sds: MultiViewSDSConfig = dfield(default_factory=MultiViewSDSConfig)
    """CFG 50, t annealed [0.98, 0.98] -> [0.02, 0.50] by 80 % of the steps, x0 std rescale 0.5, 256 px."""
    cameras: MultiViewCameraConfig = dfield(default_factory=MultiViewCameraConfig)
    """Groups of 4 views: elevation [0, 30], FOV [15, 60] deg, distance [0.8, 1.0] / tan(FOV / 2) scene radii."""
    weight: float = 1.0
    """lambda_3D (Dream-in-4D supplement Tab. 1: 1 for every prompt)."""
    front_azimuth_deg: float = 90.0
    """Azimuth (ours) of the views MVDream draws as an object's front: its t2i script's first view (get_camera
    azimuth 90) and threestudio's azimuth 0, where Dream-in-4D's 2D prior gets "front view". Text mode puts the 2D
    prior's view-dependent prompt there."""

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"The multi-view SDS weight must be >= 0, got {self.weight}.")


def without_word(prompt: str, word: str | None) -> str:
    """`prompt` with every occurrence of the word `word` removed (Dream-in-4D gives MVDream the personalised prompt
    without its subject identifier, "a sks dog" -> "a dog": MVDream never saw the identifier)."""
    if not word:
        return prompt
    kept = [w for w in prompt.split() if w.strip(",.;:!?").lower() != word.lower()]
    return " ".join(kept)


class MultiViewSDS(GuidanceTerm):
    """Every SDS step's views, in groups of the prior's `num_views` consecutive views, scored under one prompt
    (MVDream takes no view-dependent prompt: the cameras say where each view is)."""

    name = "mvdream"
    kind = PriorKind.IMAGE_TEXT_MULTIVIEW

    def __init__(self, prior: Any, config: MultiViewTermConfig, prompt: str, negative: str = "", suffix: str = ""):
        """prompt: the object ("a panda"); suffix: the stage's quality words appended to it."""
        super().__init__(prior)
        if not prompt.strip():
            raise ValueError("The multi-view prior needs a prompt naming the object, e.g. 'a baby panda'.")
        if config.cameras.num_views != prior.num_views:
            raise ValueError(
                f"The multi-view cameras draw groups of {config.cameras.num_views} views but the prior denoises "
                f"{prior.num_views} jointly; set MultiViewCameraConfig(num_views={prior.num_views})."
            )
        self.config, self.prompt, self.negative = config, prompt + suffix, negative
        self.text: Any = None

    def build(self) -> None:
        self.text = self.prior.text_condition(self.prompt, self.negative)

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        if not ctx.sds:
            return {}
        matrices = mvdream_camera_matrices(ctx.view.cameras)  # [B, 4, 4], in the order the views were rendered
        condition = self.prior.multiview_condition(self.text, matrices)
        out = multiview_sds(self.prior, ctx.images, condition, self.config.sds, ctx.progress, ctx.generator)
        return {self.name: self.config.weight * out["loss_sds"]}


__all__ = ["MultiViewSDS", "MultiViewTermConfig", "without_word"]
