"""Stage configurations (SPEC 1, 5-7) and the `paper`, `fast` and `smoke` presets.

Defaults are the paper / reference values. Configs are frozen dataclasses, serialised into every checkpoint as
JSON (`config_to_dict`) and rebuilt with `config_from_dict`, so a checkpoint always says how it was trained.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, replace
from dataclasses import field as dfield
from typing import Any

from ..cameras import CameraConfig
from ..fields.encoding import GridConfig
from ..fields.static import FieldConfig
from ..guidance.sds import SDSConfig
from ..rendering.occupancy import OccupancyConfig
from ..rendering.renderer import RenderConfig
from .time_sampling import TimeSamplingConfig

PRESETS = ("paper", "fast", "smoke")


@dataclass(frozen=True)
class LossWeights:
    """Lambdas of the non-SDS losses (SPEC 6)."""

    rgb: float = 5.0
    """Reference-view colour: 5 * MSE(mask * pred, mask * gt)."""
    mask: float = 0.5
    """Reference-view opacity vs mask."""
    depth: float = 0.01
    """Reference-view depth: (1 - pearson) / 2 over masked pixels (paper: 0.001)."""
    opacity_entropy: float = 1e-3
    """Binary entropy of the opacity, ramped in over the first half of the stage."""
    orientation: float = 1e-2
    """DreamFusion orientation loss (normals facing away from the camera)."""
    normal_tv: float = 0.5
    """Total variation of the rendered normal image."""
    normal_blur: float = 0.5
    """MSE of the normal image to its blurred copy."""
    temporal_tv: float = 0.1
    """Temporal TV of the 4D grid (dynamic stages only)."""


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
    weights: LossWeights = dfield(default_factory=LossWeights)
    """Lambdas of the non-SDS losses."""
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
class StaticStageConfig(StageConfig):
    """Step 1: static NeRF with SD1.5 + Zero123 SDS and reference reconstruction."""

    field: FieldConfig = dfield(default_factory=FieldConfig)
    """Grid and MLP of the static field (the dynamic stages inherit it)."""
    shading: ShadingConfig = dfield(default_factory=lambda: ShadingConfig(normal_until=0.2))
    """Normal shading for the first 20 % of iterations, then textureless with p 0.2, else lambertian."""
    sd: SDSConfig = dfield(default_factory=lambda: SDSConfig(guidance_scale=100.0, t_range=(0.2, 0.6)))
    """SDS of the 2D (image-text) prior."""
    lambda_sd: float = 1.0
    """Weight of the 2D SDS loss."""
    zero123: SDSConfig = dfield(default_factory=lambda: SDSConfig(guidance_scale=5.0, t_range=(0.2, 0.6)))
    """SDS of the 3D (image-pose) prior."""
    lambda_zero123: float = 40.0
    """Weight of the 3D SDS loss (times angle-to-reference / 180)."""


@dataclass(frozen=True)
class CoarseStageConfig(StageConfig):
    """Step 2: 4D grid from the static result; video SDS, Zero123 on frame 0, temporal TV."""

    steps: int = 10000
    """Training iterations of the stage."""
    prompt_suffix: str = ", high-resolution, 8k, good quality"
    """Appended to the motion prompt."""
    num_knots: int = 64
    """T, time grids of the 4D field."""
    tv_points: int = 100_000
    """Random points of the temporal TV estimate."""
    time: TimeSamplingConfig = dfield(default_factory=TimeSamplingConfig)
    """Temporal balanced sampling (F = 16 frames, alpha = 0.2)."""
    p_moving_camera: float = 0.9
    """Probability that a clip is seen from a moving camera (else one static camera)."""
    occupancy_slots: int = 16
    """Time slots of the occupancy grid (each refreshed at its own time)."""
    video: SDSConfig = dfield(
        default_factory=lambda: SDSConfig(guidance_scale=100.0, t_range=(0.02, 0.98), grad_clip=1.0)
    )
    """SDS of the video prior (one t per clip, gradient clipped at 1)."""
    lambda_video: float = 1.0
    """Weight of the video SDS loss."""
    zero123: SDSConfig = dfield(default_factory=lambda: SDSConfig(guidance_scale=5.0, t_range=(0.2, 0.6)))
    """SDS of the image-pose prior on frame 0 of clips that start at t = 0."""
    lambda_zero123: float = 40.0
    """Weight of the Zero123 loss (times angle-to-reference / 180)."""
    first_frame_supervision: str = "clip_start"
    """When the reference-view reconstruction runs. 'clip_start' (paper Eq. 8, SPEC 7): on the SDS steps whose clip
    starts at t = 0, beside the video SDS and Zero123 on frame 0 (P ~ 0.107 at alpha 0.2). 'schedule': the static
    stage's reference steps (warm-up, then every `reference_every`-th step, no SDS on them), rendered at t = 0."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_knots < 1 or self.occupancy_slots < 1 or self.tv_points < 1:
            raise ValueError("num_knots, occupancy_slots and tv_points must be >= 1")
        if self.first_frame_supervision not in ("clip_start", "schedule"):
            raise ValueError(
                f"first_frame_supervision must be 'clip_start' or 'schedule', got {self.first_frame_supervision!r}"
            )


@dataclass(frozen=True)
class RefineStageConfig(CoarseStageConfig):
    """Step 3: the coarse stage's losses plus ControlNet-Tile x0 targets with the learned token."""

    steps: int = 5000
    """Training iterations of the stage."""
    shading: ShadingConfig = dfield(default_factory=lambda: ShadingConfig(p_textureless=0.0))
    """No textureless / normal shading in refinement (SPEC 4: those are steps 1-2)."""
    controlnet: SDSConfig = dfield(
        default_factory=lambda: SDSConfig(guidance_scale=7.5, t_range=(0.2, 0.8), shared_timestep=True)
    )
    """x0-target settings of the ControlNet-Tile prior."""
    lambda_controlnet: float = 1.0
    """Weight of the ControlNet x0 loss."""
    controlnet_size: int | None = 1024
    """Render size the ControlNet prior must be loaded with (512 is cheaper; None = accept the prior's size)."""
    control_frames: tuple[int, ...] | None = None
    """Frames of each clip that get the ControlNet loss; None = (0, F / 2) for the clip length F."""
    controlnet_prompt: str = "best quality, high resolution"
    """Prompt of the ControlNet branch."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.control_frames is None:
            object.__setattr__(self, "control_frames", (0, self.time.num_frames // 2))
        bad = [f for f in self.control_frames if not 0 <= f < self.time.num_frames]
        if bad or not self.control_frames:
            raise ValueError(
                f"control_frames {self.control_frames} must be non-empty frame indices in [0, {self.time.num_frames})"
            )


@dataclass(frozen=True)
class StagePresets:
    """One config per stage."""

    static: StaticStageConfig
    coarse: CoarseStageConfig
    refine: RefineStageConfig


def preset(name: str) -> StagePresets:
    """`paper`: SPEC numbers (about 7 h on a large GPU).

    `fast`: half the iterations of every stage, ControlNet at 512 instead of 1024 (4x fewer latent pixels) and
    a 5x cheaper temporal TV estimate; trades detail (fewer SDS updates, a coarser ControlNet target) and a
    noisier temporal smoothness term for roughly half the training time.
    `smoke`: a tiny grid, 32 px renders, 4 frames, 4 time knots and a handful of steps: for tests and
    installation checks with the tiny priors on a CPU; it produces no usable scene.
    """
    if name == "paper":
        return StagePresets(StaticStageConfig(), CoarseStageConfig(), RefineStageConfig())
    if name == "fast":
        return StagePresets(
            StaticStageConfig(steps=2500),
            CoarseStageConfig(steps=5000, tv_points=20_000),
            RefineStageConfig(steps=2500, tv_points=20_000, controlnet_size=512),
        )
    if name == "smoke":
        grid = GridConfig(
            num_levels=4, features_per_level=2, base_resolution=4, finest_resolution=32, log2_entries_per_level=12
        )
        common = dict(
            render_size=32,
            reference_size=32,
            reference_warmup=2,
            reference_every=3,
            render=RenderConfig(num_samples=16, num_importance=8),
            occupancy=OccupancyConfig(resolution=16, update_every=4),
            loop=LoopConfig(checkpoint_every=0, progress_every=1, preview_every=2, preview_size=32),
        )
        dynamic = dict(
            num_knots=4, tv_points=1024, time=TimeSamplingConfig(num_frames=4, lattice=16), occupancy_slots=2
        )
        return StagePresets(
            StaticStageConfig(steps=8, field=FieldConfig(grid=grid, hidden_dim=16), **common),
            CoarseStageConfig(steps=6, **common, **dynamic),
            RefineStageConfig(steps=4, controlnet_size=None, control_frames=(0, 2), **common, **dynamic),
        )
    raise ValueError(f"Unknown preset {name!r}; choose one of {PRESETS}")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-serialisable dict of a (nested) dataclass config."""
    return dataclasses.asdict(config)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Inverse of `config_to_dict`: nested dataclasses and tuples are rebuilt from JSON lists/dicts."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(
            f"{cls.__name__} has no fields {sorted(unknown)}: the checkpoint was written by another version"
        )
    kwargs = {name: _convert(hints[name], value) for name, value in data.items()}
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return config_from_dict(hint, value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is not None and len(args) >= 1:
            for arg in args:
                if typing.get_origin(arg) is tuple and isinstance(value, list):
                    return tuple(value)
    return value


def with_steps(config: StageConfig, steps: int) -> StageConfig:
    """A copy with another iteration count (e.g. for a quick run)."""
    return replace(config, steps=steps)


__all__ = [
    "PRESETS",
    "CoarseStageConfig",
    "LoopConfig",
    "LossWeights",
    "RefineStageConfig",
    "ShadingConfig",
    "StageConfig",
    "StagePresets",
    "StaticStageConfig",
    "config_from_dict",
    "config_to_dict",
    "preset",
    "with_steps",
]
