"""Dream-in-4D's clips (paper Sec. 3.2, official `uncond_trajectory.py` with delta_percentage 0): one static camera
per clip and F frames evenly spaced over a random sub-interval of the animation, of length L ~ U[0.8, 1] starting at
U[0, 1 - L]. With a reference image, a fraction of the clips start at t = 0 so the frame-0 terms (paper Eq. 8)
apply; the paper's dynamic stage has no reference, so without one no clip is forced there.
"""

from __future__ import annotations

from typing import Any

import torch

from ...cameras import static_camera_clip
from ..terms.video_x0 import StaticClipConfig
from ..view import View


class StaticCameraClips:
    """A `ViewSampler`: one clip per SDS step, seen from one random camera of the stage's camera distribution."""

    reference_time = 0.0

    def __init__(self, config: StaticClipConfig):
        self.config = config

    def draw(self, stage: Any) -> tuple[View, bool]:
        c = self.config
        lo, hi = c.length
        length = lo + (hi - lo) * stage.rand()
        forced = stage.reference is not None and stage.rand() < c.p_start_zero
        start = 0.0 if forced else (1.0 - length) * stage.rand()
        times = (start + length * torch.arange(c.num_frames, dtype=torch.float32) / (c.num_frames - 1)).clamp(0, 1)
        cameras = static_camera_clip(c.num_frames, stage.config.camera, stage.generator)
        return stage.draw_view(cameras, times), start == 0.0


__all__ = ["StaticCameraClips"]
