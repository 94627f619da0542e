"""The per-frame image-pose oracle of video-to-4D: Zero123's slot when every clip frame is a reference image.

Video-to-4D conditions Zero123 on the frame of the time it scores (Consistent4D, DreamGaussian4D and SC4D all do),
and the real term caches one `reference_condition` per frame. This oracle keeps that interface and works out which
frame it was given from the image itself, as the real prior does (its condition IS the image): `reference_condition`
ray-traces the scene from the reference camera at every clip time and picks the nearest frame (mean absolute
difference; `errors` keeps the distance, 0 for an exact clip frame). The returned `OracleFrameReference` carries the
frame's index and time; `pose_condition` adds the decoded cameras; `predict_noise` answers with the scene AT THAT
FRAME'S TIME from those cameras. So a term that conditions every time on frame 0, on the reversed clip or on a
shifted frame gets the truth of the wrong moment, and the field learns it.

References of several frames can be stacked (`stack`) for a batch that mixes times: row b of a stacked reference
goes with pose b, as a real Zero123 reference batched along its first dimension would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from . import scenes
from .priors import ImagePoseOracle, OraclePose


@dataclass
class OracleFrameReference:
    """Which clip frame(s) a reference condition was made from."""

    index: Tensor  # [R] long: frame index in the clip
    time: Tensor  # [R] the frame's time in [0, 1]


@dataclass
class OracleFramePose(OraclePose):
    time: Tensor  # [B] the time of the frame each pose is conditioned on


def stack(references: list[OracleFrameReference]) -> OracleFrameReference:
    """One reference per row, to pair with a batch of poses of mixed times."""
    return OracleFrameReference(
        index=torch.cat([r.index for r in references]), time=torch.cat([r.time for r in references])
    )


class ClipImagePoseOracle(ImagePoseOracle):
    """Zero123's slot for a clip: the scene at the conditioning frame's time, from the decoded relative pose."""

    def __init__(
        self,
        times: Tensor | list[float],
        scene=scenes.moving,
        size: int = 32,
        reference_polar: float = 90.0,
        reference_azimuth: float = 0.0,
    ):
        """times: the clip's frame times (frame i at times[i]), the only moments it can be conditioned on."""
        super().__init__(scene, size, reference_polar, reference_azimuth)
        self.times = torch.as_tensor(times, dtype=torch.float32).reshape(-1)
        self.errors: list[float] = []  # distance of each given image to the frame it was matched to
        self.matched: list[int] = []  # frame index of each reference_condition call
        self.answered_times: list[float] = []  # times the predictions were rendered at, per view
        self._truth: dict[int, Tensor] = {}

    def image(self, t: float, polar_deg: float, azimuth_deg: float, height: int, width: int) -> Tensor:
        """The truth [3, H, W]: the scene at time t from (polar, azimuth) (a mesh oracle renders its mesh here)."""
        return scenes.image(self.scene, t, polar_deg, azimuth_deg, height, width)

    def clip_frames(self, size: int) -> Tensor:
        """The clip from the reference camera at `size` px: [N, 3, size, size] (cached per size)."""
        if size not in self._truth:
            ref = self.reference_polar, self.reference_azimuth
            self._truth[size] = torch.stack([self.image(float(t), *ref, size, size) for t in self.times])
        return self._truth[size]

    def reference_condition(self, image: Tensor) -> OracleFrameReference:
        """image [1, 3, H, W] (square) -> the nearest clip frame's index and time."""
        if image.dim() != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"Reference image must be [1, 3, H, W], got {tuple(image.shape)}.")
        truth = self.clip_frames(int(image.shape[-1]))
        distance = (truth - image.detach().float().cpu()).abs().mean(dim=(1, 2, 3))
        index = int(distance.argmin())
        self.errors.append(float(distance[index]))
        self.matched.append(index)
        self.reference_error = float(distance[index])
        return OracleFrameReference(index=torch.tensor([index]), time=self.times[index : index + 1].clone())

    def pose_condition(self, reference: OracleFrameReference, pose: Tensor) -> OracleFramePose:
        views = super().pose_condition(None, pose)
        b = views.polar_deg.shape[0]
        if reference.time.shape[0] not in (1, b):
            raise ValueError(f"{reference.time.shape[0]} reference frames for {b} poses; stack one per pose or one.")
        return OracleFramePose(views.polar_deg, views.azimuth_deg, reference.time.expand(b).clone())

    def predict_noise(self, noisy: Tensor, t: Tensor, condition: OracleFramePose, guidance_scale: float) -> Tensor:
        h, w = self.frame_size(noisy)
        self.answered_times.extend(float(x) for x in condition.time)
        truth = torch.stack(
            [
                self.image(float(tk), float(p), float(a), h, w)
                for tk, p, a in zip(condition.time, condition.polar_deg, condition.azimuth_deg)
            ]
        )
        return self.guided_eps(noisy, t, truth, guidance_scale)
