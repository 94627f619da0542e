"""Zero123 score distillation from the reference image (SPEC 2, 5): every static view, frame 0 of clips at t = 0."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dfield
from typing import Any

from torch import Tensor

from ...cameras import CameraConfig, Cameras, angle_from_reference_deg
from ...guidance.sds import SDSConfig, center_square, score_distillation
from ...priors.base import PriorKind
from ...priors.zero123 import pose_embedding
from .base import GuidanceTerm, StepContext


@dataclass(frozen=True)
class Zero123Config:
    """SDS of the image-pose prior."""

    sds: SDSConfig = dfield(default_factory=lambda: SDSConfig(guidance_scale=5.0, t_range=(0.2, 0.6)))
    """CFG 5, t in [0.2, 0.6], renders at the prior's 256."""
    weight: float = 40.0
    """lambda of the 3D SDS loss (times the view's angle to the reference / 180)."""


def relative_pose(cameras: Cameras, camera: CameraConfig) -> tuple[Tensor, Tensor]:
    """Zero123 poses [B, 4] of `cameras` relative to the reference camera of `camera`, and their SPEC 5 weights
    [B] (the angle to the reference view / 180)."""
    pose = pose_embedding(
        cameras.polar_deg,
        cameras.azimuth_deg,
        reference_polar=camera.reference_polar_deg,
        reference_azimuth=camera.reference_azimuth_deg,
    )
    return pose, angle_from_reference_deg(cameras, camera) / 180.0


class Zero123SDS(GuidanceTerm):
    """Frame 0 of the step's view, when it shows the reference's moment, scored from its pose relative to the
    reference camera; the weight grows with the angle to the reference view (SPEC 5). The first-frame rule of the
    dynamic stages (paper Eq. 7-8) is the `at_reference_time` of the step."""

    name = "zero123"
    kind = PriorKind.IMAGE_POSE

    def __init__(self, prior: Any, config: Zero123Config, reference_image: Tensor, camera: CameraConfig):
        """reference_image: the input image [3, S, S] on white; camera: the stage's cameras (the reference pose
        the relative poses are taken from)."""
        super().__init__(prior)
        self.config, self.reference_image, self.camera = config, reference_image, camera
        self.reference: Any = None

    def build(self) -> None:
        self.reference = self.prior.reference_condition(self.reference_image[None].float())

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        if not ctx.sds or not ctx.at_reference_time:
            return {}
        pose, weight = relative_pose(ctx.view.cameras[0], self.camera)
        cond = self.prior.pose_condition(self.reference, pose)
        weight = weight.to(ctx.images.device)
        images = center_square(ctx.images[:1])
        sds = score_distillation(self.prior, images, cond, self.config.sds, weight, ctx.progress, ctx.generator)
        return {self.name: self.config.weight * sds["loss_sds"]}
