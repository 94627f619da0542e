"""Step 2: the coarse dynamic stage (SPEC 1, 5-7): a 4D grid initialised from the static result.

SDS steps draw a clip with temporal balanced sampling, a moving camera with p = 0.9 (else one static camera),
render its F frames at the video prior's aspect and apply video SDS; when the clip starts at t = 0, Zero123 SDS
also sees frame 0 and (rule 'clip_start', paper Eq. 8) the reference view is reconstructed. Temporal TV every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..cameras import sample_dynamic_cameras, static_camera_clip
from ..priors.base import Prior
from ..rendering.occupancy import OccupancyGrid
from .config import CoarseStageConfig
from .representations import REPRESENTATIONS
from .scene import Scene
from .stage import Stage, View
from .terms.arap import ARAP
from .terms.base import GuidanceTerm
from .terms.displacement_tv import DisplacementTV
from .terms.reconstruction import Reconstruction
from .terms.regularisers import Regularisers
from .terms.temporal_tv import TemporalTV
from .terms.video_sds import VideoSDS
from .terms.zero123_sds import Zero123SDS
from .time_sampling import sample_clip_times


@dataclass
class DynamicPriors:
    """Prior slots of the coarse stage; None switches a prior off."""

    video: Prior | None = None
    """Video-text prior (ModelScope / Zeroscope)."""
    zero123: Prior | None = None
    """Image-pose prior on frame 0 of clips that start at t = 0."""


class ClipViews:
    """A clip per SDS step: balanced frame times (SPEC 7) seen by a moving camera with p_moving_camera."""

    reference_time = 0.0

    def draw(self, stage: Stage) -> tuple[View, bool]:
        c = stage.config
        times, starts_at_zero = sample_clip_times(c.time, stage.generator)
        f = c.time.num_frames
        moving = stage.rand() < c.p_moving_camera
        camera_clip = sample_dynamic_cameras if moving else static_camera_clip
        return stage.draw_view(camera_clip(f, c.camera, stage.generator), times), starts_at_zero


def as_scene(scene: Scene | str | Path, device: Any = "cpu") -> Scene:
    if isinstance(scene, (str, Path)):
        return Scene.load(scene, device)
    if not isinstance(scene, Scene):
        raise ValueError(f"Expected a Scene or a scene checkpoint path, got {type(scene).__name__}")
    return scene


def dynamic_terms(
    config: CoarseStageConfig,
    priors: DynamicPriors,
    prompt: str,
    negative: str,
    extra: tuple = (),
    with_reference: bool = True,
    mesh: tuple | None = None,
) -> list[GuidanceTerm]:
    """The coarse stage's terms in the order their losses are summed; `extra` (the refine stage's ControlNet
    target) goes after the first-frame terms. Without a reference (text-to-4D) there is no first-frame term.
    `mesh` (scene-space vertices [V, 3], faces [F, 3]) is the mesh being animated: ARAP on its vertices."""
    if not with_reference and priors.zero123 is not None:
        raise ValueError("Zero123 is conditioned on the reference image: wire a reference, or no Zero123 prior.")
    clip_start = config.first_frame_supervision == "clip_start"
    grid4d = config.representation == "grid4d"
    terms = [
        VideoSDS(priors.video, config.video, prompt, negative, config.prompt_suffix) if priors.video else None,
        Zero123SDS(priors.zero123, config.zero123) if priors.zero123 else None,
        Reconstruction(config.reconstruction, on_clip_start=clip_start) if with_reference else None,
        *extra,
        Regularisers(config.regularisers),
        TemporalTV(config.temporal_tv) if grid4d else DisplacementTV(config.displacement_tv),
        ARAP(config.arap, *mesh) if mesh is not None else None,
    ]
    return [t for t in terms if t]


def check_config(config: Any, expected: type, stage: str) -> None:
    if type(config) is not expected:
        raise ValueError(f"The {stage} stage needs a {expected.__name__}, got {type(config).__name__}")


class CoarseStage(Stage):
    """Trains a dynamic field built from the static result: a Grid4DField whose T knots start as copies of the static
    grid, or a DeformationField around the frozen static field (`config.representation`)."""

    name = "coarse"

    def __init__(
        self,
        config: CoarseStageConfig,
        reference: Any,
        scene: Scene | str | Path,
        priors: DynamicPriors | None = None,
        prompt: str = "",
        negative_prompt: str = "",
        device: str | torch.device | None = None,
        mesh: tuple | None = None,
    ):
        """
        Args:
            scene: the static stage's result (Scene or its checkpoint file); it is read, not changed.
            prompt: the motion prompt ("a panda is dancing").
            mesh: (vertices [V, 3] in scene units, faces [F, 3]) of the mesh the scene was fitted to, for the ARAP
                term (mesh animation, deformation representation only).
        """
        check_config(config, CoarseStageConfig, self.name)
        static = as_scene(scene)
        if static.is_dynamic:
            raise ValueError(
                f"The coarse stage starts from the static stage's result, but got a dynamic scene (written by the "
                f"{static.stage} stage). To continue a coarse run pass resume_from=<its checkpoint> to train()."
            )
        if mesh is not None and config.representation != "deformation":
            raise ValueError("ARAP on a mesh needs representation='deformation' (vertices keep their identity).")
        field = REPRESENTATIONS[config.representation](static.field, config)
        occupancy = OccupancyGrid(config.occupancy, config.occupancy_slots, static.field.config.grid.bound)
        with_reference = reference is not None
        terms = dynamic_terms(config, priors or DynamicPriors(), prompt, negative_prompt, (), with_reference, mesh)
        schedule = config.first_frame_supervision == "schedule"
        super().__init__(config, reference, Scene(field, occupancy, "coarse"), terms, ClipViews(), device, schedule)


__all__ = ["ClipViews", "CoarseStage", "DynamicPriors", "as_scene", "dynamic_terms"]
