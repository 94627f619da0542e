"""Zero123 score distillation conditioned on the clip frame of each view's time (video-to-4D, issue 26).

The image-pose prior only knows one moment: the image it is conditioned on. A view at time t is therefore scored
under the frame of that time (Consistent4D, DreamGaussian4D and SC4D all do so): every frame's condition (CLIP
embedding + VAE latent for Zero123) is computed once when the stage is attached, stacked, and each step picks the
rows of its frames, so one prior call scores a batch of views at different times. Pose and angle weight are the
single-image term's (SPEC 5: lambda 40 times the view's angle to the reference / 180), for every frame.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ...cameras import CameraConfig
from ...guidance.sds import center_square, score_distillation
from ...priors.base import PriorKind
from .base import GuidanceTerm, StepContext
from .clip_frames import condition_rows, nearest_frames, stack_conditions
from .zero123_sds import Zero123Config, relative_pose


class ClipZero123SDS(GuidanceTerm):
    """Every view of the step, each conditioned on the clip frame of its time."""

    name = "zero123"
    kind = PriorKind.IMAGE_POSE

    def __init__(self, prior: Any, config: Zero123Config, frames: Tensor, times: Tensor, camera: CameraConfig):
        """
        Args:
            frames: the clip's frames [N, 3, S, S] on white (recentred, as the static stage's reference image).
            times: their times [N], increasing.
            camera: the stage's cameras (the reference pose the relative poses are taken from).
        """
        super().__init__(prior)
        if frames.dim() != 4 or frames.shape[1] != 3 or frames.shape[0] != times.shape[0]:
            shapes = f"{tuple(frames.shape)} and {tuple(times.shape)}"
            raise ValueError(f"Expected clip frames [N, 3, S, S] and their times [N], got {shapes}.")
        self.config, self.frames, self.camera = config, frames, camera
        self.times = times.float().clone()
        self.references: Any = None

    def attach(self, device: Any) -> None:
        self.times = self.times.to(device)

    def build(self) -> None:
        """One reference condition per frame (N image-encoder + VAE passes, once), stacked into one."""
        self.references = stack_conditions(
            [self.prior.reference_condition(frame[None].float()) for frame in self.frames]
        )

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        times = ctx.view.times
        if not ctx.sds or times is None:
            return {}
        references = condition_rows(self.references, nearest_frames(self.times, times))
        pose, weight = relative_pose(ctx.view.cameras, self.camera)
        cond = self.prior.pose_condition(references, pose)
        images = center_square(ctx.images)
        g = ctx.generator
        sds = score_distillation(self.prior, images, cond, self.config.sds, weight.to(images.device), ctx.progress, g)
        return {self.name: self.config.weight * sds["loss_sds"]}


__all__ = ["ClipZero123SDS"]
