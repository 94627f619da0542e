"""Step 1: a static NeRF from the reference view, SD1.5 SDS (view-dependent prompt) and Zero123 SDS (SPEC 1, 5, 6).

Reference steps (the first `reference_warmup` steps, then every `reference_every`-th) render the input camera with
ambient 1 on white and apply the rgb / mask / depth losses; the other steps render one random camera with
random shading and background and apply the SDS losses of whichever priors are wired in. Without priors every
step is a reference step (reconstruction only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..cameras import sample_static_cameras
from ..fields.static import StaticField
from ..guidance.sds import score_distillation
from ..priors.base import Prior, PriorKind
from ..rendering.occupancy import OccupancyGrid
from .config import StaticStageConfig
from .scene import Scene
from .stage_base import TrainingStage


@dataclass
class StaticPriors:
    """The static stage's prior slots; None switches a prior off."""

    sd: Prior | None = None
    """2D image-text prior (SD1.5)."""
    zero123: Prior | None = None
    """3D image-pose prior (Zero123-XL)."""


class StaticStage(TrainingStage):
    """Trains a StaticField (or continues a static scene)."""

    name = "static"
    slots = {"sd": PriorKind.IMAGE_TEXT, "zero123": PriorKind.IMAGE_POSE}

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
            reference: a `Reference` (rgb [3, S, S] on white, mask [1, S, S], depth [1, S, S] or None).
            prompt: appearance prompt of the 2D prior ("a high-resolution DSLR image of a panda").
            scene: a static scene to continue from (default: a fresh field with the config's sizes).
        """
        if not isinstance(config, StaticStageConfig):
            raise ValueError(f"The static stage needs a StaticStageConfig, got {type(config).__name__}")
        priors = priors or StaticPriors()
        if priors.sd is not None and not prompt.strip():
            raise ValueError("The 2D prior needs an appearance prompt, e.g. 'a high-resolution DSLR image of a panda'")
        if scene is None:
            with torch.random.fork_rng(devices=[]):  # seeded grid init without touching the caller's RNG
                torch.manual_seed(config.seed)
                field = StaticField(config.field)
            scene = Scene(field, OccupancyGrid(config.occupancy, 1, config.field.grid.bound), "static")
        elif scene.is_dynamic:
            raise ValueError(
                f"The static stage got a dynamic scene (written by the {scene.stage} stage); it trains a static "
                f"field. "
                f"Pass that scene to the coarse or refine stage instead."
            )
        super().__init__(config, reference, scene, {"sd": priors.sd, "zero123": priors.zero123}, device)
        self.prompt = prompt + config.prompt_suffix
        self.negative_prompt = negative_prompt
        self.sd_condition: Any = None
        self.zero123_reference: Any = None

    def build_conditions(self) -> None:
        if "sd" in self.priors:
            self.sd_condition = self.priors["sd"].view_dependent_condition(self.prompt, self.negative_prompt)
        if "zero123" in self.priors:
            self.zero123_reference = self.zero123_reference_condition()

    def compute_losses(self, step: int) -> dict[str, Tensor]:
        c = self.config
        if not self.uses_sds or c.is_reference_step(step):
            losses, out = self.reference_losses(None)
            return {**losses, **self.regularisers(out, step)}
        cams = sample_static_cameras(1, c.camera, self.generator)
        view = self.draw_view(cams, None)
        out = self.render_view(self.scene.field, view, c.render_size)
        images = out["rgb"].permute(0, 3, 1, 2)  # [1, 3, H, W]
        losses: dict[str, Tensor] = {}
        progress = self.progress(step)
        if "sd" in self.priors:
            cond = self.sd_condition.at_azimuth(cams.azimuth_deg - self.config.camera.reference_azimuth_deg)
            sds = score_distillation(self.priors["sd"], images, cond, c.sd, 1.0, progress, self.generator)
            losses["sd"] = c.lambda_sd * sds["loss_sds"]
        if "zero123" in self.priors:
            losses["zero123"] = self.zero123_loss(cams, images, progress)
        return {**losses, **self.regularisers(out, step)}


__all__ = ["StaticPriors", "StaticStage"]
