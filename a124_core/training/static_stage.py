"""Step 1: a static NeRF from the reference view, SD1.5 SDS (view-dependent prompt) and Zero123 SDS (SPEC 1, 5, 6);
or, without a reference (text mode), from the multi-view prior (MVDream) and the 2D prior (Dream-in-4D Sec. 3.1).

Reference steps (the first `reference_warmup` steps, then every `reference_every`-th) render the input camera with
ambient 1 on white and apply the reconstruction losses; the other steps render random cameras with random
shading and background and apply the SDS terms of whichever priors are wired in. Without priors every step is a
reference step (reconstruction only). With the multi-view prior every SDS step renders groups of views around a
random azimuth (`MultiViewViews`), which the 2D prior also scores, each view under its view-dependent prompt.
The render size and views per step follow the config's `render_schedule` (Dream-in-4D: 64 px x 8, then 256 px x 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..cameras import sample_static_cameras
from ..fields.static import StaticField
from ..multiview_cameras import MultiViewCameraConfig, sample_multiview_cameras
from ..priors.base import Prior
from ..rendering.occupancy import OccupancyGrid
from .config import StaticStageConfig
from .scene import Scene
from .stage import Stage, slot_priors
from .terms.multiview_sds import MultiViewSDS, without_word
from .terms.reconstruction import Reconstruction
from .terms.regularisers import Regularisers
from .terms.text_sds import TextSDS
from .terms.zero123_sds import Zero123SDS
from .view import View


@dataclass
class StaticPriors:
    """The static stage's prior slots; None switches a prior off."""

    sd: Prior | None = None
    """2D image-text prior (SD1.5, SD2.1-base, a DreamBooth model)."""
    zero123: Prior | None = None
    """3D image-pose prior (Zero123-XL); needs a reference image."""
    mvdream: Prior | None = None
    """3D image-text-multiview prior (MVDream); text mode only."""


class StaticViews:
    """Random static cameras (SPEC 2), as many per SDS step as the stage's render phase asks (one by default);
    every static view shows the reference's moment."""

    reference_time = None
    group = 1

    def draw(self, stage: StaticStage) -> tuple[View, bool]:
        cams = sample_static_cameras(stage.phase.batch, stage.config.camera, stage.generator)
        return stage.draw_view(cams, None), True


class MultiViewViews:
    """Groups of `num_views` views per SDS step (MVDream's cameras: shared elevation, FOV and distance, azimuths
    a0 + 360 i / N), batch / num_views groups (Dream-in-4D: 2 groups at 64 px, then 1 at 256 px)."""

    reference_time = None

    def __init__(self, cameras: MultiViewCameraConfig):
        self.cameras = cameras
        self.group = cameras.num_views

    def draw(self, stage: StaticStage) -> tuple[View, bool]:
        views = sample_multiview_cameras(stage.phase.batch // self.group, self.cameras, stage.generator)
        return stage.draw_view(views.cameras, None), True


def new_static_scene(config: StaticStageConfig) -> Scene:
    """A fresh field with the config's sizes, seeded without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        field = StaticField(config.field)
    return Scene(field, OccupancyGrid(config.occupancy, 1, config.field.grid.bound), "static")


class StaticStage(Stage):
    """Trains a StaticField (or continues a static scene)."""

    name = "static"

    def __init__(
        self,
        config: StaticStageConfig,
        reference: Any,
        priors: StaticPriors | None = None,
        prompt: str = "",
        negative_prompt: str = "",
        scene: Scene | None = None,
        device: str | torch.device | None = None,
        subject_word: str | None = None,
    ):
        """
        Args:
            reference: a `Reference` (rgb [3, S, S] on white, mask [1, S, S], depth [1, S, S] or None); None for
                text mode (text-to-4D: the multi-view and/or 2D prior, no Zero123, no reconstruction).
            prompt: appearance prompt of the text priors ("a high-resolution DSLR image of a panda").
            negative_prompt: of the text priors (default: the config's).
            scene: a static scene to continue from (default: a fresh field with the config's sizes).
            subject_word: a personalised 2D prior's identifier ("sks"), left out of the multi-view prior's prompt.
        """
        if not isinstance(config, StaticStageConfig):
            raise ValueError(f"The static stage needs a StaticStageConfig, got {type(config).__name__}")
        priors = priors or StaticPriors()
        if scene is not None and scene.is_dynamic:
            raise ValueError(
                f"The static stage got a dynamic scene (written by the {scene.stage} stage); it trains a static "
                f"field. Pass that scene to the coarse or refine stage instead."
            )
        _check_slots(reference, priors)
        views = MultiViewViews(config.mvdream.cameras) if priors.mvdream is not None else StaticViews()
        bad = [p for p in config.render_schedule if p.batch % views.group]
        if bad:
            raise ValueError(
                f"render_schedule batches must be multiples of the multi-view prior's {views.group} views per group, "
                f"got {bad}."
            )
        #: The render phase of the step being computed (size and views of its SDS render).
        self.phase = config.render_phase(0, views.group)
        terms = _terms(config, reference, priors, prompt, negative_prompt or config.negative_prompt, subject_word)
        scene = scene if scene is not None else new_static_scene(config)
        super().__init__(config, reference, scene, terms, views, slot_priors(priors), device)
        self.render_shape = (self.phase.size, self.phase.size)

    def before_step(self, step: int) -> None:
        """The render phase of `step` (size and views of its SDS render), then the base stage's schedule."""
        self.phase = self.config.render_phase(step, self.views.group)
        self.render_shape = (self.phase.size, self.phase.size)
        super().before_step(step)


def _check_slots(reference: Any, priors: StaticPriors) -> None:
    if reference is None and priors.zero123 is not None:
        raise ValueError("Zero123 is conditioned on the reference image: wire a reference, or no Zero123 prior.")
    if reference is not None and priors.mvdream is not None:
        raise ValueError(
            "MVDream is the 3D prior of text mode (no reference image); with a reference image the 3D prior is "
            "Zero123. Leave out the image or the multi-view prior."
        )


def _terms(
    config: StaticStageConfig,
    reference: Any,
    priors: StaticPriors,
    prompt: str,
    negative: str,
    subject_word: str | None,
) -> list[Any]:
    """The stage's terms for the wired priors; in text mode with MVDream the 2D prior's "front view" words go where
    MVDream draws the front."""
    c, suffix = config, config.prompt_suffix
    front = c.mvdream.front_azimuth_deg if priors.mvdream is not None else c.camera.reference_azimuth_deg
    mvdream_prompt = without_word(prompt, subject_word)
    terms = [
        MultiViewSDS(priors.mvdream, c.mvdream, mvdream_prompt, negative, suffix) if priors.mvdream else None,
        TextSDS(priors.sd, c.sd, prompt, negative, suffix, front) if priors.sd else None,
        Zero123SDS(priors.zero123, c.zero123, reference.rgb, c.camera) if priors.zero123 else None,
        Reconstruction(c.reconstruction, c.reference_size) if reference is not None else None,
        Regularisers(c.regularisers, c.steps),
    ]
    return [t for t in terms if t]


__all__ = ["MultiViewViews", "StaticPriors", "StaticStage", "StaticViews", "new_static_scene"]
