"""Dream-in-4D's video guidance as a term (paper Sec. 3.2, supplement 3.2; the default of the deformation
representation): one-step x0 latent + decoded-RGB loss, t annealed from [0.99, 0.99] to [0.2, 0.5], clips rendered at
a fraction of the prior's training resolution and upsampled to it.

The render size and the displacement-TV weight follow one schedule of phases, as in the authors' configs: Zeroscope
(576x320) renders 144x80 (a quarter) with TV 1000 throughout; ModelScope (256) renders 64 px with TV 1000 for 7000 of
10000 steps, then 256 px with TV 10 (`stage2_zeroscope_144x80.yaml`, `stage2_modelscope_256x256.yaml`). A refine
stage continues the coarse run's last phase and last t range.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from dataclasses import field as dfield
from typing import Any

from torch import Tensor

from ...guidance.sds import SDSConfig, scoring_size
from ...guidance.video_x0 import check_decodes, x0_video_guidance
from ...priors.base import PriorKind
from .base import GuidanceTerm, StepContext


@dataclass(frozen=True)
class VideoPhase:
    """From `start` (a fraction of the stage's steps) on, clips are rendered at `scale` x the prior's size and the
    displacement TV has weight `tv_weight`."""

    start: float
    """Fraction of the stage's steps at which the phase begins (0.7 = step 7000 of 10000)."""
    scale: float
    """Render size / the prior's scoring size (0.25: 144x80 for Zeroscope's 576x320, 64 px for ModelScope's 256)."""
    tv_weight: float
    """lambda_TV of the displacement TV in this phase (the authors': 1000 at a quarter size, 10 at full size)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.start <= 1.0 or not 0.0 < self.scale <= 1.0 or self.tv_weight < 0:
            raise ValueError(
                f"A video phase needs start in [0, 1], scale in (0, 1], tv_weight >= 0; got {self.start}, "
                f"{self.scale}, {self.tv_weight}"
            )


#: The authors' Zeroscope schedule (the paper's main results): 144x80 renders, TV 1000, all 10000 steps.
ZEROSCOPE_PHASES = (VideoPhase(0.0, 0.25, 1000.0),)
#: The authors' ModelScope schedule: 64 px renders with TV 1000 until step 7000, then 256 px with TV 10.
MODELSCOPE_PHASES = (VideoPhase(0.0, 0.25, 1000.0), VideoPhase(0.7, 1.0, 10.0))


def _phases_from_dict(value: Any) -> tuple[VideoPhase, ...] | None:
    return None if value is None else tuple(VideoPhase(**p) for p in value)


@dataclass(frozen=True)
class StaticClipConfig:
    """Dream-in-4D's clips (paper Sec. 3.2): one static camera, frames evenly spaced over a random sub-interval."""

    num_frames: int = 24
    """F, frames per clip (Zeroscope's; the authors' ModelScope config renders 16)."""
    length: tuple[float, float] = (0.8, 1.0)
    """The clip spans L ~ U[lo, hi] of the animation, starting at U[0, 1 - L]."""
    p_start_zero: float = 0.2
    """With a reference image only: probability that a clip starts at t = 0, so frame 0 gets the reference-view
    reconstruction and Zero123 (paper Eq. 8, Animate124's alpha). Dream-in-4D has no reference in the dynamic
    stage: without one it is unused (text-to-4D clips always start at U[0, 1 - L])."""

    def __post_init__(self) -> None:
        lo, hi = self.length
        if self.num_frames < 2 or not 0.0 < lo <= hi <= 1.0 or not 0.0 <= self.p_start_zero <= 1.0:
            raise ValueError(
                f"Clips need num_frames >= 2, 0 < length lo <= hi <= 1 and p_start_zero in [0, 1]; got "
                f"{self.num_frames}, {self.length}, {self.p_start_zero}"
            )


@dataclass(frozen=True)
class DreamIn4DVideoConfig:
    """Dream-in-4D's video guidance and the clips it scores (the official Zeroscope / ModelScope configs)."""

    sds: SDSConfig = dfield(
        default_factory=lambda: SDSConfig(guidance_scale=100.0, t_range=(0.99, 0.99), t_min_end=0.2, t_max_end=0.5)
    )
    """CFG 100; t ~ U[t_min, t_max] annealed linearly from [0.99, 0.99] to [0.2, 0.5] over the stage; no gradient
    clip; scored at the prior's size (`image_size` None: its configured size, e.g. Zeroscope's 576x320)."""
    rgb_weight: float = 0.1
    """lambda_dec of the decoded-RGB loss (official lambda_sds_color)."""
    weight: float = 1.0
    """lambda of the whole video loss (official lambda_sds_video)."""
    phases: tuple[VideoPhase, ...] | None = dfield(default=None, metadata={"from_dict": _phases_from_dict})
    """Render size and TV weight over the stage; None = the authors' schedule for the prior's shape: a wide prior
    (Zeroscope) `ZEROSCOPE_PHASES`, a square one (ModelScope) `MODELSCOPE_PHASES`."""
    refine_t_range: tuple[float, float] = (0.2, 0.5)
    """t range of a refine stage: the coarse run's last one (the motion is learned; high-t targets would blur the
    appearance refine now trains)."""
    clips: StaticClipConfig = dfield(default_factory=StaticClipConfig)
    """The clips this guidance scores."""

    def __post_init__(self) -> None:
        if self.phases is not None:
            phases = tuple(p if isinstance(p, VideoPhase) else VideoPhase(*p) for p in self.phases)
            if not phases or phases[0].start != 0.0 or any(a.start >= b.start for a, b in zip(phases, phases[1:])):
                raise ValueError(f"phases must start at 0 and be in increasing start order, got {self.phases}")
            object.__setattr__(self, "phases", phases)
        if self.rgb_weight < 0 or self.weight < 0:
            raise ValueError(f"Need rgb_weight >= 0 and weight >= 0, got {self.rgb_weight}, {self.weight}")
        SDSConfig(t_range=self.refine_t_range)  # the same range checks


def authors_phases(prior_size: int | tuple[int, int]) -> tuple[VideoPhase, ...]:
    """The authors' schedule for a prior that scores `prior_size` clips (square: ModelScope's, else Zeroscope's)."""
    h, w = (prior_size, prior_size) if isinstance(prior_size, int) else prior_size
    return MODELSCOPE_PHASES if h == w else ZEROSCOPE_PHASES


class DreamIn4DVideo(GuidanceTerm):
    """All frames of the step's clip, in time order, under the motion prompt: one-step x0 latent + RGB losses."""

    name = "video"
    kind = PriorKind.VIDEO_TEXT

    def __init__(
        self,
        prior: Any,
        config: DreamIn4DVideoConfig,
        prompt: str,
        negative: str = "",
        suffix: str = "",
        continues: bool = False,
    ):
        """prompt: the motion prompt; suffix: the stage's quality words; continues: a refine stage (the coarse
        run's last phase and t range throughout)."""
        super().__init__(prior)
        if not prompt.strip():
            raise ValueError("The video prior needs a motion prompt, e.g. 'a panda is dancing'")
        check_decodes(prior, config.rgb_weight)
        self.config, self.prompt, self.negative = config, prompt + suffix, negative
        size = scoring_size(config.sds, prior)
        self.prior_size = (size, size) if isinstance(size, int) else tuple(size)
        phases = config.phases or authors_phases(self.prior_size)
        self.phases = (VideoPhase(0.0, phases[-1].scale, phases[-1].tv_weight),) if continues else phases
        sds = config.sds
        if continues:
            sds = replace(sds, t_range=config.refine_t_range, t_min_end=None, t_max_end=None)
        self.sds = sds
        self.condition: Any = None

    def build(self) -> None:
        self.condition = self.prior.text_condition(self.prompt, self.negative)

    def phase(self, progress: float) -> VideoPhase:
        """The phase in force at training progress in [0, 1]."""
        return [p for p in self.phases if p.start <= progress][-1]

    def render_aspect(self) -> tuple[int, int]:
        return self.prior_size

    def render_size(self, progress: float) -> tuple[int, int]:
        scale = self.phase(progress).scale
        return tuple(max(8, round(side * scale)) for side in self.prior_size)

    def tv_weight(self, progress: float) -> float:
        """The displacement-TV weight tied to this phase's render size."""
        return self.phase(progress).tv_weight

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        if not ctx.sds:
            return {}
        c = self.config
        out = x0_video_guidance(self.prior, ctx.images, self.condition, self.sds, c.rgb_weight, ctx.progress,
                                ctx.generator)  # fmt: skip
        losses = {self.name: c.weight * out["loss_latent"]}
        if c.rgb_weight > 0:
            losses["video_rgb"] = c.weight * c.rgb_weight * out["loss_rgb"]
        return losses


__all__ = [
    "MODELSCOPE_PHASES",
    "ZEROSCOPE_PHASES",
    "DreamIn4DVideo",
    "DreamIn4DVideoConfig",
    "StaticClipConfig",
    "VideoPhase",
    "authors_phases",
]
