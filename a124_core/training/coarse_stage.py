"""Step 2: the coarse dynamic stage (SPEC 1, 5-7): a 4D grid initialised from the static result.

SDS steps draw a clip with temporal balanced sampling, a moving camera with p = 0.9 (else one static camera),
render its F frames and apply video SDS; when the clip starts at t = 0, Zero123 SDS also sees frame 0.
Reference steps reconstruct the input view at t = 0 (the reference image is frame 0). Temporal TV every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..cameras import sample_dynamic_cameras, static_camera_clip
from ..fields.grid4d import Grid4DField
from ..guidance.sds import center_square, render_shape, score_distillation
from ..priors.base import Prior, PriorKind
from ..rendering.occupancy import OccupancyGrid
from .config import CoarseStageConfig
from .scene import Scene
from .stage_base import TrainingStage, View
from .time_sampling import sample_clip_times


@dataclass
class DynamicPriors:
    """Prior slots of the dynamic stages; None switches a prior off."""

    video: Prior | None = None
    """Video-text prior (ModelScope / Zeroscope)."""
    zero123: Prior | None = None
    """Image-pose prior on frame 0 of clips that start at t = 0."""
    controlnet: Prior | None = None
    """Image-control prior (refine stage only)."""


def as_scene(scene: Scene | str | Path, device: Any = "cpu") -> Scene:
    if isinstance(scene, (str, Path)):
        return Scene.load(scene, device)
    if not isinstance(scene, Scene):
        raise ValueError(f"Expected a Scene or a scene checkpoint path, got {type(scene).__name__}")
    return scene


class CoarseStage(TrainingStage):
    """Trains a Grid4DField whose T knots start as copies of the static grid."""

    name = "coarse"
    config_class = CoarseStageConfig
    slots = {"video": PriorKind.VIDEO_TEXT, "zero123": PriorKind.IMAGE_POSE}

    def __init__(
        self,
        config: CoarseStageConfig,
        reference: Any,
        scene: Scene | str | Path,
        priors: DynamicPriors | None = None,
        prompt: str = "",
        negative_prompt: str = "",
        device: str | torch.device | None = None,
    ):
        """
        Args:
            scene: the static stage's result (Scene or its checkpoint file).
            prompt: the motion prompt ("a panda is dancing").
        """
        if type(config) is not self.config_class:
            raise ValueError(
                f"The {self.name} stage needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        priors = priors or DynamicPriors()
        if priors.controlnet is not None and "controlnet" not in self.slots:
            raise ValueError(
                "The coarse stage has no ControlNet slot; wire the ControlNet-Tile prior into the refine stage"
            )
        super().__init__(config, reference, self._prepare_scene(as_scene(scene), config), self._slots(priors), device)
        self._check_prompt(prompt)
        self.prompt = prompt + config.prompt_suffix
        self.negative_prompt = negative_prompt
        self.video_condition: Any = None
        self.zero123_reference: Any = None

    def _prepare_scene(self, static: Scene, config: CoarseStageConfig) -> Scene:
        """A fresh 4D scene whose knots all copy the static grid."""
        if static.is_dynamic:
            raise ValueError(
                f"The coarse stage starts from the static stage's result, but got a dynamic scene (written by the "
                f"{static.stage} stage). To continue a coarse run pass resume_from=<its checkpoint> to train()."
            )
        field = Grid4DField.from_static(static.field, config.num_knots, config.tv_points)
        occupancy = OccupancyGrid(config.occupancy, config.occupancy_slots, static.field.config.grid.bound)
        return Scene(field, occupancy, "coarse")

    def _slots(self, priors: DynamicPriors) -> dict[str, Any]:
        return {"video": priors.video, "zero123": priors.zero123}

    def _check_prompt(self, prompt: str) -> None:
        if self.priors.get("video") is not None and not prompt.strip():
            raise ValueError("The video prior needs a motion prompt, e.g. 'a panda is dancing'")
        video = self.priors.get("video")
        frames = getattr(video, "num_frames", None)
        if frames is not None and frames != self.config.time.num_frames:
            raise ValueError(
                f"The video prior renders {frames} frames but the config samples {self.config.time.num_frames}; "
                f"set time.num_frames to {frames} or load the prior with num_frames={self.config.time.num_frames}"
            )

    def build_conditions(self) -> None:
        if "video" in self.priors:
            self.video_condition = self.priors["video"].text_condition(self.prompt, self.negative_prompt)
        if "zero123" in self.priors:
            self.zero123_reference = self.zero123_reference_condition()

    def draw_clip(self) -> tuple[View, bool]:
        """Frame times (balanced sampling), moving or static camera, shading of one SDS step."""
        c = self.config
        times, starts_at_zero = sample_clip_times(c.time, self.generator)
        f = c.time.num_frames
        moving = self.rand() < c.p_moving_camera
        cams = (
            sample_dynamic_cameras(f, c.camera, self.generator)
            if moving
            else static_camera_clip(f, c.camera, self.generator)
        )
        return self.draw_view(cams, times), starts_at_zero

    @property
    def clip_size(self) -> tuple[int, int]:
        """(H, W) of clip renders: the video prior's aspect (SPEC 5), square without one."""
        video = self.priors.get("video")
        size = self.config.render_size
        return render_shape(size, video.image_size) if video is not None else (size, size)

    def clip_losses(self, view: View, starts_at_zero: bool, out: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        """Video SDS on all frames; first-frame supervision (Zero123 SDS on frame 0, and with 'clip_start' the
        reference-view reconstruction at t = 0) when the clip starts at t = 0 (paper Eq. 8)."""
        c = self.config
        images = out["rgb"].permute(0, 3, 1, 2)  # [F, 3, H, W]
        progress = self.progress(step)
        losses: dict[str, Tensor] = {}
        if "video" in self.priors:
            sds = score_distillation(
                self.priors["video"], images, self.video_condition, c.video, 1.0, progress, self.generator
            )
            losses["video"] = c.lambda_video * sds["loss_sds"]
        if starts_at_zero:
            if "zero123" in self.priors:
                losses["zero123"] = self.zero123_loss(view.cameras[0], center_square(images[:1]), progress)
            if c.first_frame_supervision == "clip_start":
                losses.update(self.reference_losses(0.0)[0])
        return losses

    def temporal_tv(self) -> dict[str, Tensor]:
        w = self.config.weights.temporal_tv
        if w <= 0:
            return {}
        return {"temporal_tv": w * self.scene.field.temporal_tv(generator=self.generator)}

    def is_reconstruction_step(self, step: int) -> bool:
        """A step that only reconstructs the reference view (no SDS): every step without priors, else the
        warm-up / every-k-th schedule when first_frame_supervision is 'schedule'."""
        c = self.config
        return not self.uses_sds or (c.first_frame_supervision == "schedule" and c.is_reference_step(step))

    def compute_losses(self, step: int) -> dict[str, Tensor]:
        c = self.config
        if self.is_reconstruction_step(step):
            losses, out = self.reference_losses(0.0)
            return {**losses, **self.regularisers(out, step), **self.temporal_tv()}
        view, starts_at_zero = self.draw_clip()
        out = self.render_view(self.scene.field, view, self.clip_size)
        losses = self.clip_losses(view, starts_at_zero, out, step)
        return {**losses, **self.regularisers(out, step), **self.temporal_tv()}


__all__ = ["CoarseStage", "DynamicPriors", "as_scene"]
