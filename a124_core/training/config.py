"""Stage configurations (SPEC 1, 5-7); each guidance term's settings are its own config, nested here.

Defaults are the paper / reference values (the `paper`, `fast` and `smoke` presets are in `a124_core.presets`).
Configs are frozen dataclasses, serialised into every checkpoint as JSON (`config_to_dict`) and rebuilt with
`config_from_dict`, so a checkpoint always says how it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from dataclasses import field as dfield
from typing import ClassVar

from ..cameras import CameraConfig
from ..config_io import config_from_dict, config_to_dict
from ..fields.static import FieldConfig
from ..rendering.occupancy import OccupancyConfig
from ..rendering.renderer import RenderConfig
from .representations import (
    DEFAULT_REPRESENTATION,
    REPRESENTATIONS,
    Representation,
    representation_from_dict,
    representation_to_dict,
)
from .terms.arap import ARAPTermConfig
from .terms.controlnet import ControlNetConfig
from .terms.multiview_sds import MultiViewTermConfig
from .terms.reconstruction import ReconstructionConfig
from .terms.regularisers import RegularisersConfig
from .terms.text_sds import TextSDSConfig
from .terms.video_sds import VideoSDSConfig
from .terms.zero123_sds import Zero123Config
from .time_sampling import TimeSamplingConfig


@dataclass(frozen=True)
class ShadingConfig:
    """Random shading of SDS renders (SPEC 4)."""

    p_textureless: float = 0.2
    """Probability of textureless (white albedo) shading."""
    normal_until: float = 0.0
    """Fraction of the stage's first steps rendered with normal shading ((n + 1) / 2): a geometry warm-up, 0.2 in
    the static stage (the reference's normal_iter_ratio)."""
    ambient_range: tuple[float, float] = (0.1, 1.0)
    """Ambient light a ~ U[lo, hi] of lambertian / textureless shading."""
    random_background: bool = True
    """One random background colour per step (else white)."""


@dataclass(frozen=True)
class LoopConfig:
    """Bookkeeping of the shared training loop."""

    checkpoint_every: int = 1000
    """Steps between periodic checkpoints (0 = only on cancellation and at the end)."""
    progress_every: int = 10
    """Steps between progress callbacks (each reads the losses: one host sync)."""
    preview_every: int = 100
    """Steps between preview images (0 = never); sent with the progress calls whose step is a multiple of it."""
    preview_size: int = 128
    """Side of the preview render (reference view, t = 0)."""
    max_bad_steps: int = 5
    """K: this many non-finite steps in a row stop training with an error."""
    offload_priors: bool = True
    """Move priors back to the CPU when the stage ends (frees GPU memory for the next stage); on CUDA also move the
    text / image encoders there as soon as the stage's conditions are cached (0.8-1.4 GB per stage)."""
    vae_checkpointing: str = "auto"
    """Recompute the priors' VAE-encoder activations in the backward pass: 'on', 'off', or 'auto' = on for GPUs
    under 40 GiB. Counted at paper settings (BENCHMARKS.md): the refine stage's prior step 21.8 -> 10.5 GB with
    the ControlNet at 1024 px, for ~23 % more prior FLOPs."""

    def __post_init__(self) -> None:
        if self.vae_checkpointing not in ("auto", "on", "off"):
            raise ValueError(f"vae_checkpointing must be 'auto', 'on' or 'off', got {self.vae_checkpointing!r}")
        if self.max_bad_steps < 1 or self.progress_every < 1:
            raise ValueError(
                f"max_bad_steps and progress_every must be >= 1, got {self.max_bad_steps}, {self.progress_every}"
            )
        if self.checkpoint_every < 0 or self.preview_every < 0:
            raise ValueError("checkpoint_every and preview_every must be >= 0 (0 turns them off)")


@dataclass(frozen=True)
class StageConfig:
    """Settings shared by all three stages."""

    steps: int = 5000
    """Training iterations of the stage."""
    seed: int = 3407
    """Seed of the stage's random generator (cameras, times, noise)."""
    render_size: int = 128
    """Side of SDS renders."""
    reference_size: int = 128
    """Side of reference-view renders (reconstruction losses)."""
    reference_warmup: int = 100
    """Every step before this one is a reference step."""
    reference_every: int = 4
    """Afterwards every this-many-th step is a reference step (no SDS on those steps)."""
    render: RenderConfig = dfield(default_factory=RenderConfig)
    """Ray marching."""
    occupancy: OccupancyConfig = dfield(default_factory=OccupancyConfig)
    """Occupancy grid (empty-space skipping)."""
    camera: CameraConfig = dfield(default_factory=CameraConfig)
    """Camera distributions."""
    reconstruction: ReconstructionConfig = dfield(default_factory=ReconstructionConfig)
    """Lambdas of the reference-view losses."""
    regularisers: RegularisersConfig = dfield(default_factory=RegularisersConfig)
    """Lambdas of the geometry regularisers."""
    shading: ShadingConfig = dfield(default_factory=ShadingConfig)
    """Random shading of SDS renders."""
    loop: LoopConfig = dfield(default_factory=LoopConfig)
    """Checkpoints, progress, NaN guard, prior offload."""
    betas: tuple[float, float] = (0.9, 0.99)
    """Adam betas."""
    adam_eps: float = 1e-15
    """Adam epsilon."""
    prompt_suffix: str = ", 8k, good quality"
    """Appended to the prompt of the text priors."""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.render_size < 8 or self.reference_size < 8:
            raise ValueError(
                f"render_size and reference_size must be >= 8 px, got {self.render_size}, {self.reference_size}"
            )
        if self.reference_every < 1:
            raise ValueError(f"reference_every must be >= 1, got {self.reference_every}")

    def is_reference_step(self, step: int) -> bool:
        """SPEC 6: every step < warmup, then every `reference_every`-th step."""
        return step < self.reference_warmup or step % self.reference_every == 0


@dataclass(frozen=True)
class RenderPhase:
    """From step `from_step` on, every SDS step renders `batch` views at `size` x `size` px."""

    from_step: int
    """First step of the phase (the first phase starts at 0)."""
    size: int
    """Side of the SDS renders (the priors resize them to their own sizes)."""
    batch: int
    """Views rendered per SDS step; with the multi-view prior a multiple of its views per group (4)."""


#: Dream-in-4D's static schedule (supplement 3.1, MVDream-threestudio's `batch_size: [8, 4]`, `width: [64, 256]`,
#: `resolution_milestones: [5000]`): 64 px renders in batches of 8 (two groups of four views) for the first 5000
#: steps, then 256 px in batches of 4.
DREAM_IN_4D_STATIC_SCHEDULE = (RenderPhase(0, 64, 8), RenderPhase(5000, 256, 4))


def _schedule_from_dict(value: list) -> tuple[RenderPhase, ...]:
    return tuple(RenderPhase(**phase) for phase in value)


def _schedule_to_dict(value: tuple[RenderPhase, ...]) -> list:
    return [config_to_dict(phase) for phase in value]


@dataclass(frozen=True)
class StaticStageConfig(StageConfig):
    """Step 1: a static NeRF. With a reference image: SD1.5 + Zero123 SDS and reference reconstruction (Animate124);
    text mode: the multi-view prior (MVDream) + the 2D prior (Dream-in-4D), or the 2D prior alone."""

    field: FieldConfig = dfield(default_factory=FieldConfig)
    """Grid and MLP of the static field (the dynamic stages inherit it)."""
    shading: ShadingConfig = dfield(default_factory=lambda: ShadingConfig(normal_until=0.2))
    """Normal shading for the first 20 % of iterations, then textureless with p 0.2, else lambertian."""
    sd: TextSDSConfig = dfield(default_factory=TextSDSConfig)
    """SDS of the 2D (image-text) prior."""
    zero123: Zero123Config = dfield(default_factory=Zero123Config)
    """SDS of the 3D (image-pose) prior."""
    mvdream: MultiViewTermConfig = dfield(default_factory=MultiViewTermConfig)
    """SDS, cameras and weight of the multi-view prior (text mode, Dream-in-4D)."""
    render_schedule: tuple[RenderPhase, ...] = dfield(
        default=(), metadata={"to_dict": _schedule_to_dict, "from_dict": _schedule_from_dict}
    )
    """SDS render size and views per step by phase (`DREAM_IN_4D_STATIC_SCHEDULE`); empty: every SDS step renders
    one view (one group of views with the multi-view prior) at `render_size` (Animate124)."""
    negative_prompt: str = ""
    """Negative prompt of the text priors when the caller gives none."""

    def __post_init__(self) -> None:
        super().__post_init__()
        phases = self.render_schedule
        if phases and phases[0].from_step != 0:
            raise ValueError(f"render_schedule must start at step 0, got {phases[0]}.")
        if any(b.from_step <= a.from_step for a, b in zip(phases, phases[1:])):
            raise ValueError(f"render_schedule phases must start at increasing steps, got {phases}.")
        bad = [p for p in phases if p.size < 8 or p.batch < 1]
        if bad:
            raise ValueError(f"render_schedule phases need size >= 8 px and batch >= 1, got {bad}.")

    def render_phase(self, step: int, group: int = 1) -> RenderPhase:
        """The schedule's phase at `step`; without a schedule `group` views (1, or the multi-view prior's group)
        at `render_size`."""
        if not self.render_schedule:
            return RenderPhase(0, self.render_size, group)
        return [p for p in self.render_schedule if p.from_step <= step][-1]


@dataclass(frozen=True)
class CoarseStageConfig(StageConfig):
    """Step 2: a dynamic field from the static result; video SDS, Zero123 on frame 0, the representation's
    smoothness term."""

    continues_coarse: ClassVar[bool] = False
    """Whether the stage continues a coarse run (refine): a video term's schedule then stays at its end."""
    steps: int = 10000
    """Training iterations of the stage."""
    prompt_suffix: str = ", high-resolution, 8k, good quality"
    """Appended to the motion prompt."""
    representation: Representation = dfield(
        default_factory=lambda: REPRESENTATIONS[DEFAULT_REPRESENTATION],
        metadata={"to_dict": representation_to_dict, "from_dict": representation_from_dict},
    )
    """The dynamic field and its settings (`training/representations`): Grid4D (Animate124's T copies of the static
    grid, paper Eq. 1, with temporal TV) or Deformation (Dream-in-4D: the static field frozen as the canonical scene,
    warped by a 4D hash grid + MLP, with displacement TV; vertices keep their identity over time, so the scene
    exports as one mesh with morph targets)."""
    time: TimeSamplingConfig = dfield(default_factory=TimeSamplingConfig)
    """Temporal balanced sampling (F = 16 frames, alpha = 0.2)."""
    p_moving_camera: float = 0.9
    """Probability that a clip is seen from a moving camera (else one static camera)."""
    occupancy_slots: int = 16
    """Time slots of the occupancy grid (each refreshed at its own time)."""
    video: VideoSDSConfig = dfield(default_factory=VideoSDSConfig)
    """SDS of the video prior (one t per clip, gradient clipped at 1)."""
    zero123: Zero123Config = dfield(default_factory=Zero123Config)
    """SDS of the image-pose prior on frame 0 of clips that start at t = 0."""
    arap: ARAPTermConfig = dfield(default_factory=ARAPTermConfig)
    """ARAP on the vertices of a mesh being animated (only when the stage is given one: `meshes/animate.py`)."""
    first_frame_supervision: str = "clip_start"
    """When the reference-view reconstruction runs. 'clip_start' (paper Eq. 8, SPEC 7): on the SDS steps whose clip
    starts at t = 0, beside the video SDS and Zero123 on frame 0 (P ~ 0.107 at alpha 0.2). 'schedule': the static
    stage's reference steps (warm-up, then every `reference_every`-th step, no SDS on them), rendered at t = 0."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.occupancy_slots < 1:
            raise ValueError(f"occupancy_slots must be >= 1, got {self.occupancy_slots}")
        if not isinstance(self.representation, Representation):
            raise ValueError(
                f"representation must be a Representation (e.g. REPRESENTATIONS['grid4d']), got "
                f"{self.representation!r}"
            )
        if self.first_frame_supervision not in ("clip_start", "schedule"):
            raise ValueError(
                f"first_frame_supervision must be 'clip_start' or 'schedule', got {self.first_frame_supervision!r}"
            )


@dataclass(frozen=True)
class RefineStageConfig(CoarseStageConfig):
    """Step 3: the coarse stage's losses plus ControlNet-Tile x0 targets with the learned token."""

    continues_coarse: ClassVar[bool] = True
    steps: int = 5000
    """Training iterations of the stage."""
    shading: ShadingConfig = dfield(default_factory=lambda: ShadingConfig(p_textureless=0.0))
    """No textureless / normal shading in refinement (SPEC 4: those are steps 1-2)."""
    controlnet: ControlNetConfig = dfield(default_factory=ControlNetConfig)
    """x0 targets of the ControlNet-Tile prior on frames 0 and F / 2."""


def with_steps(config: StageConfig, steps: int) -> StageConfig:
    """A copy with another iteration count (e.g. for a quick run)."""
    return replace(config, steps=steps)


__all__ = [
    "DREAM_IN_4D_STATIC_SCHEDULE",
    "CoarseStageConfig",
    "ControlNetConfig",
    "LoopConfig",
    "MultiViewTermConfig",
    "ReconstructionConfig",
    "RefineStageConfig",
    "RegularisersConfig",
    "RenderPhase",
    "ShadingConfig",
    "StageConfig",
    "StaticStageConfig",
    "TextSDSConfig",
    "VideoSDSConfig",
    "Zero123Config",
    "config_from_dict",
    "config_to_dict",
    "with_steps",
]
