"""Step 1: a static NeRF from the reference view, SD1.5 SDS (view-dependent prompt) and Zero123 SDS (SPEC 1, 5, 6).

Reference steps (the first `reference_warmup` steps, then every `reference_every`-th) render the input camera with
ambient 1 on white and apply the reconstruction losses; the other steps render one random camera with random
shading and background and apply the SDS terms of whichever priors are wired in. Without priors every step is a
reference step (reconstruction only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..cameras import sample_static_cameras
from ..fields.static import StaticField
from ..priors.base import Prior
from ..rendering.occupancy import OccupancyGrid
from .config import StaticStageConfig
from .scene import Scene
from .stage import Stage, slot_priors
from .terms.reconstruction import Reconstruction
from .terms.regularisers import Regularisers
from .terms.text_sds import TextSDS
from .terms.zero123_sds import Zero123SDS
from .view import View


@dataclass
class StaticPriors:
    """The static stage's prior slots; None switches a prior off."""

    sd: Prior | None = None
    """2D image-text prior (SD1.5)."""
    zero123: Prior | None = None
    """3D image-pose prior (Zero123-XL)."""


class StaticViews:
    """One random static camera per SDS step (SPEC 2); every static view shows the reference's moment."""

    reference_time = None

    def draw(self, stage: Stage) -> tuple[View, bool]:
        cams = sample_static_cameras(1, stage.config.camera, stage.generator)
        return stage.draw_view(cams, None), True


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
    ):
        """
        Args:
            reference: a `Reference` (rgb [3, S, S] on white, mask [1, S, S], depth [1, S, S] or None); None for
                text-to-3D (Dream-in-4D's text-to-4D path: the SD prior alone, no Zero123, no reconstruction).
            prompt: appearance prompt of the 2D prior ("a high-resolution DSLR image of a panda").
            scene: a static scene to continue from (default: a fresh field with the config's sizes).
        """
        if not isinstance(config, StaticStageConfig):
            raise ValueError(f"The static stage needs a StaticStageConfig, got {type(config).__name__}")
        priors = priors or StaticPriors()
        if scene is not None and scene.is_dynamic:
            raise ValueError(
                f"The static stage got a dynamic scene (written by the {scene.stage} stage); it trains a static "
                f"field. Pass that scene to the coarse or refine stage instead."
            )
        if reference is None and priors.zero123 is not None:
            raise ValueError("Zero123 is conditioned on the reference image: wire a reference, or no Zero123 prior.")
        c, azimuth = config, config.camera.reference_azimuth_deg
        terms = [
            TextSDS(priors.sd, c.sd, prompt, negative_prompt, c.prompt_suffix, azimuth) if priors.sd else None,
            Zero123SDS(priors.zero123, config.zero123, reference.rgb, config.camera) if priors.zero123 else None,
            Reconstruction(config.reconstruction, config.reference_size) if reference is not None else None,
            Regularisers(config.regularisers, config.steps),
        ]
        scene = scene if scene is not None else new_static_scene(config)
        terms = [t for t in terms if t]
        super().__init__(config, reference, scene, terms, StaticViews(), slot_priors(priors), device)


__all__ = ["StaticPriors", "StaticStage", "StaticViews", "new_static_scene"]
