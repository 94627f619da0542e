"""Text mode of the real static stage (no reference image) under the oracle multi-view prior and a front-only 2D prior.

Dream-in-4D's static schedule, scaled to the oracle runs: batches of 8 views (two groups of four) for the first half of
the steps, then 4 (one group), all at the oracle priors' 32 px; the paper's weights lambda_2D = lambda_3D = 1.
"""

from __future__ import annotations

from typing import Any

from a124_core.training.config import RenderPhase, StaticStageConfig
from a124_core.training.static_stage import StaticPriors, StaticStage

from . import scenes, setup
from .multiview import FrontOnlyTextOracle, MultiViewOracle

STEPS = 200


def text_config(steps: int = STEPS, **overrides: Any) -> StaticStageConfig:
    schedule = (RenderPhase(0, setup.SIZE, 8), RenderPhase(steps // 2, setup.SIZE, 4))
    return setup.static_config(steps, render_schedule=schedule, **overrides)


def text_run(steps: int = STEPS, multiview: bool = True, text: bool = True, scene=scenes.still) -> setup.Measured:
    """The static stage in text mode with the oracle MVDream and/or the front-only 2D oracle (without MVDream: the
    Animate124 static cameras, one view per step, the 2D prior's front at the reference azimuth).

    Held-out views are rendered with the scene's occupancy grid, as every output is (`setup.held_out_psnr`): text
    mode has no mask loss, so the initial density in cells the grid never let a ray sample stays as it started.
    """
    config = text_config(steps) if multiview else setup.static_config(steps)
    mvdream = MultiViewOracle(scene) if multiview else None
    front = config.mvdream.front_azimuth_deg if multiview else config.camera.reference_azimuth_deg
    sd = FrontOnlyTextOracle(front, scene) if text else None
    stage = StaticStage(config, None, StaticPriors(sd=sd, mvdream=mvdream), "spheres")
    setup.watch(stage, mvdream, sd)
    start = setup.held_out_psnr(stage, stage.scene, scene, [None])
    result = setup.run(stage)
    psnr = setup.held_out_psnr(stage, result, scene, [None])
    return setup.Measured(psnr, start, result, {"mvdream": mvdream, "sd": sd})
