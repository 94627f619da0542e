"""Small configs, the analytic reference, the runs and the held-out measurements shared by the oracle tests.

Everything is 32 px with a small grid so that the real stage trainers run a few hundred steps on a CPU in about a
minute each. Shading is lambertian at full ambient light on white (that is the albedo), the SDS renders'
regularisers are off: the oracles know the albedo of the scene and nothing else.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import torch

from a124_core.cameras import make_cameras
from a124_core.fields.encoding import GridConfig
from a124_core.fields.static import FieldConfig
from a124_core.rendering.occupancy import OccupancyConfig
from a124_core.rendering.renderer import RenderConfig
from a124_core.training.config import (
    CoarseStageConfig,
    ControlNetConfig,
    LoopConfig,
    ReconstructionConfig,
    RefineStageConfig,
    RegularisersConfig,
    ShadingConfig,
    StaticStageConfig,
)
from a124_core.training.representations import Grid4D
from a124_core.training.runner import train
from a124_core.training.terms.temporal_tv import TemporalTVConfig
from a124_core.training.time_sampling import TimeSamplingConfig
from a124_core.training.view import View

from . import scenes

SIZE = 32
RENDER = RenderConfig(num_samples=32, num_importance=16)
COMMON = dict(
    render_size=SIZE,
    reference_size=SIZE,
    render=RENDER,
    occupancy=OccupancyConfig(resolution=32, update_every=16),
    shading=ShadingConfig(p_textureless=0.0, normal_until=0.0, ambient_range=(1.0, 1.0), random_background=False),
    reconstruction=ReconstructionConfig(depth=0.0),
    regularisers=RegularisersConfig(opacity_entropy=0.0, orientation=0.0, normal_tv=0.0, normal_blur=0.0),
    loop=LoopConfig(checkpoint_every=0, progress_every=50, preview_every=0),
)
FIELD = FieldConfig(
    grid=GridConfig(num_levels=6, base_resolution=8, finest_resolution=96, log2_entries_per_level=15), hidden_dim=32
)
DYNAMIC = dict(
    representation=Grid4D(num_knots=8, temporal_tv=TemporalTVConfig(points=4096)),
    time=TimeSamplingConfig(num_frames=4, lattice=32),
    occupancy_slots=4,
)

#: Held-out views: none is the reference view (azimuth 0) or its mirror image.
HELD_OUT = [(75.0, 50.0), (100.0, 130.0), (85.0, -160.0), (65.0, -80.0), (110.0, -35.0), (90.0, 95.0)]
HELD_OUT_TIMES = [0.0, 0.25, 0.5, 0.75, 1.0]


def static_config(steps: int = 400, **overrides: Any) -> StaticStageConfig:
    return StaticStageConfig(steps=steps, field=FIELD, reference_warmup=20, **{**COMMON, **overrides})


def coarse_config(steps: int = 300, **overrides: Any) -> CoarseStageConfig:
    return CoarseStageConfig(steps=steps, **{**COMMON, **DYNAMIC, **overrides})


def refine_config(steps: int = 150, **overrides: Any) -> RefineStageConfig:
    controlnet = ControlNetConfig(sds=replace(ControlNetConfig().sds, image_size=None), frames=(0, 2))
    return RefineStageConfig(steps=steps, controlnet=controlnet, **{**COMMON, **DYNAMIC, **overrides})


def reference(scene: scenes.SceneAt = scenes.still, size: int = SIZE) -> SimpleNamespace:
    """The input image: the scene at t = 0 from the reference camera (polar 90, azimuth 0), on white."""
    rgb, alpha = scenes.trace(scene(0.0), 90.0, 0.0, size, size)
    return SimpleNamespace(rgb=rgb, mask=(alpha > 0.5).float(), alpha=alpha, depth=None)


def watch(stage: Any, *oracles: Any) -> Any:
    """Let the oracles see the views the stage draws (the stage's own hook)."""
    stage.view_observers.extend(o.observe for o in oracles if o is not None)
    return stage


def run(stage: Any) -> Any:
    torch.manual_seed(0)
    return train(stage)


@torch.no_grad()
def held_out_psnr(
    stage: Any, model: Any, scene: scenes.SceneAt, times: list[float | None]
) -> dict[float | None, float]:
    """Mean PSNR over HELD_OUT views at each time (None: a static field) of `model` (a Scene: its field rendered with
    its own occupancy grid, as training and every export do), rendered by the stage's own renderer."""
    result = {}
    for t in times:
        values = []
        for polar, azimuth in HELD_OUT:
            cams = make_cameras(polar, azimuth)
            view = View(cams, None if t is None else torch.tensor([t]), "albedo", None, 1.0, torch.ones(3))
            out = stage.render_view(view, SIZE, field=model.field, occupancy=model.occupancy, perturb=False)
            pred = out["rgb"][0].permute(2, 0, 1)
            values.append(scenes.psnr(pred, scenes.image(scene, t or 0.0, polar, azimuth, SIZE, SIZE)))
        result[t] = sum(values) / len(values)
    return result


@dataclass
class Measured:
    """What a run reports: mean held-out PSNR per time, the start it improved on, and the oracles (for checks)."""

    psnr: dict
    start: dict
    scene: Any
    oracles: dict
    levels: list = field(default_factory=list)
    """Active deformation-grid levels at each SDS step (deformation fields only)."""

    def __str__(self) -> str:
        now = ", ".join(f"t={k}: {v:.1f}" for k, v in self.psnr.items())
        return f"PSNR {now} dB (mean {mean(self.psnr):.1f}; start mean {mean(self.start):.1f})"


def mean(values: dict) -> float:
    return sum(values.values()) / len(values)


def static_run(
    steps: int = 400, text: bool = False, pose: bool = True, scene: scenes.SceneAt = scenes.still
) -> Measured:
    """Static stage from the analytic reference (`scene` at t = 0) with the image-pose (and/or image-text) oracle."""
    from a124_core.training.static_stage import StaticPriors, StaticStage

    from .priors import ImagePoseOracle, ImageTextOracle

    zero123 = ImagePoseOracle(scene) if pose else None
    sd = ImageTextOracle(scene) if text else None
    priors = StaticPriors(sd=sd, zero123=zero123)
    stage = watch(StaticStage(static_config(steps), reference(scene), priors, "spheres"), zero123, sd)
    start = held_out_psnr(stage, stage.scene, scene, [None])
    result = run(stage)
    return Measured(held_out_psnr(stage, result, scene, [None]), start, result, {"sd": sd, "zero123": zero123})


def record_levels(stage: Any) -> list[int]:
    """The deformation grid's active level count at every SDS step of `stage` (empty for other fields)."""
    levels: list[int] = []
    if hasattr(stage.scene.field, "levels"):
        stage.view_observers.append(lambda view: levels.append(int(stage.scene.field.levels)))
    return levels


def coarse_run(
    static: Any,
    steps: int = 300,
    scene: scenes.SceneAt = scenes.moving,
    video_size: int | tuple[int, int] = SIZE,
    **config: Any,
) -> Measured:
    """Coarse stage from a static scene with the video (scoring `video_size` frames) and image-pose oracles;
    start = the static scene."""
    from a124_core.training.coarse_stage import CoarseStage, DynamicPriors
    from a124_core.training.static_stage import StaticStage

    from .priors import ImagePoseOracle, VideoOracle

    start = held_out_psnr(StaticStage(static_config(1), reference(scene), scene=static), static, scene, HELD_OUT_TIMES)
    zero123, video = ImagePoseOracle(scene), VideoOracle(scene, size=video_size)
    priors = DynamicPriors(video=video, zero123=zero123)
    stage = watch(
        CoarseStage(coarse_config(steps, **config), reference(scene), static, priors, "spheres move"), video, zero123
    )
    levels = record_levels(stage)
    result = run(stage)
    psnr = held_out_psnr(stage, result, scene, HELD_OUT_TIMES)
    return Measured(psnr, start, result, {"video": video, "zero123": zero123}, levels)


def refine_run(coarse: Any, steps: int = 150, truth: scenes.SceneAt = scenes.moving, **config: Any) -> Measured:
    """Refine stage from (a copy of) a coarse scene with the image-control oracle alone, which knows `truth`;
    start = the coarse scene. `config`: refine-config overrides (a deformation scene's representation)."""
    from a124_core.training.refine_stage import RefinePriors, RefineStage

    from .priors import ImageControlOracle

    config = refine_config(steps, **config)
    control = ImageControlOracle(coarse, config.controlnet.frames, config.render, (SIZE, SIZE), scene=truth)
    priors = RefinePriors(controlnet=control)
    stage = RefineStage(config, reference(), copy.deepcopy(coarse), priors, "", token_prompt="a _ball_")
    watch(stage, control)
    levels = record_levels(stage)
    start = held_out_psnr(stage, coarse, truth, HELD_OUT_TIMES)
    result = run(stage)
    psnr = held_out_psnr(stage, result, truth, HELD_OUT_TIMES)
    return Measured(psnr, start, result, {"controlnet": control}, levels)
