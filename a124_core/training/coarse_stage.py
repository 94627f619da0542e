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
from ..reference.clip import ReferenceClip
from ..rendering.occupancy import OccupancyGrid
from .config import CoarseStageConfig
from .scene import Scene
from .stage import Stage, slot_priors
from .terms.arap import ARAP
from .terms.base import GuidanceTerm
from .terms.reconstruction import Reconstruction
from .terms.regularisers import Regularisers
from .terms.zero123_sds import Zero123SDS
from .time_sampling import sample_clip_times
from .video_clip import clip_terms, clip_views
from .view import View


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
    reference: Any = None,
    extra: tuple = (),
    mesh: tuple | None = None,
) -> list[GuidanceTerm]:
    """The coarse stage's terms in the order their losses are summed; `extra` (the refine stage's ControlNet
    target) goes after the first-frame terms. Without a reference (text-to-4D) there is no first-frame term.
    `mesh` (scene-space vertices [V, 3], faces [F, 3]) is the mesh being animated: ARAP on its vertices.
    A `ReferenceClip` as `reference` (video-to-4D) replaces the first-frame terms by per-frame ones."""
    if reference is None and priors.zero123 is not None:
        raise ValueError("Zero123 is conditioned on the reference image: wire a reference, or no Zero123 prior.")
    c = config
    with_reference = reference is not None
    clip = reference if isinstance(reference, ReferenceClip) else None
    recon = Reconstruction(c.reconstruction, c.reference_size, c.first_frame_supervision == "clip_start")
    video = c.representation.video_term(c, priors.video, prompt, negative) if priors.video else None
    terms = [
        video,
        Zero123SDS(priors.zero123, c.zero123, reference.rgb, c.camera) if priors.zero123 and clip is None else None,
        recon if with_reference and clip is None else None,
        *(clip_terms(c, priors.zero123, clip) if clip is not None else ()),
        *extra,
        Regularisers(c.regularisers, c.steps),
        c.representation.smoothness_term(c, video),
        ARAP(c.arap, *mesh) if mesh is not None else None,
    ]
    return [t for t in terms if t]


def check_config(config: Any, expected: type, stage: str) -> None:
    if type(config) is not expected:
        raise ValueError(f"The {stage} stage needs a {expected.__name__}, got {type(config).__name__}")


class CoarseStage(Stage):
    """Trains a dynamic field that `config.representation` builds from the static result (a 4D grid whose knots
    start as copies of the static grid, a deformation field around the frozen static field, ...)."""

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
            reference: the input image's `Reference`, or a `ReferenceClip` (video-to-4D: `video_clip.py`; the
                static stage was trained on its `first_reference()`).
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
        representation = config.representation
        if mesh is not None and not representation.keeps_correspondence:
            raise ValueError(
                f"ARAP on a mesh needs a representation whose points keep their identity over time (deformation), "
                f"not {representation.name}."
            )
        field = representation.build(static.field)
        occupancy = OccupancyGrid(config.occupancy, config.occupancy_slots, static.field.config.grid.bound)
        priors = priors or DynamicPriors()
        terms = dynamic_terms(config, priors, prompt, negative_prompt, reference, (), mesh)
        clip = reference if isinstance(reference, ReferenceClip) else None
        schedule = config.first_frame_supervision == "schedule" and clip is None
        scene = Scene(field, occupancy, "coarse")
        views = representation.clip_sampler(config) or ClipViews()
        if clip is not None:  # video-to-4D: the clip's own frames every step; its first frame is the reference image
            views, reference = clip_views(clip, config, priors.video), clip.first_reference()
        super().__init__(config, reference, scene, terms, views, slot_priors(priors), device, schedule)


__all__ = ["ClipViews", "CoarseStage", "DynamicPriors", "as_scene", "dynamic_terms"]
