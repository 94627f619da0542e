"""What the coarse stage does with a reference clip instead of one image (video-to-4D, issue 26).

The clip's frames were all filmed from the reference camera, at times i / (N - 1). Each step takes F of them
(F = the stage's `time.num_frames`, all frames when the clip is shorter), one from each of F equal stretches of
the clip, in time order, so every frame is drawn equally often and each step spans the whole motion; no time
lattice: a frame is rendered at exactly its own time. At those times the step
- reconstructs each frame from the reference camera (`ClipReconstruction`: rgb, mask, depth if the clip has it);
- renders one novel view per frame and scores each with Zero123 conditioned on that frame (`ClipZero123SDS`):
  independent random cameras, or, when the optional video prior is wired, one camera path over the frames
  (moving with p_moving_camera, as the coarse stage's clips) so the video prior sees a video.
Every step does both (DreamGaussian4D's recipe): there are no reconstruction-only steps, and no first-frame
rule: every frame is a reference image of its own moment.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..cameras import sample_dynamic_cameras, sample_static_cameras, static_camera_clip
from .terms.base import GuidanceTerm
from .terms.clip_reconstruction import ClipReconstruction
from .terms.clip_zero123_sds import ClipZero123SDS
from .view import View


def stratified_frames(num_frames: int, per_step: int, generator: torch.Generator | None = None) -> Tensor:
    """min(per_step, N) frame indices [F] (long, increasing): one uniformly from each of F equal stretches of
    the N frames (all frames when F >= N)."""
    f = min(per_step, num_frames)
    edges = torch.arange(f + 1) * num_frames // f
    low, width = edges[:-1], edges[1:] - edges[:-1]
    return low + (torch.rand(f, generator=generator) * width).long().clamp(max=width - 1)


class ClipFrameViews:
    """Each step: F clip frames at their own times, one novel camera per frame (see the module docstring)."""

    reference_time = 0.0
    #: Steps draw frames even without a prior: the per-frame reconstruction needs no prior.
    draws_without_priors = True

    def __init__(self, times: Tensor, per_step: int, camera_path: bool = False):
        """times: the clip's frame times [N]; per_step: F; camera_path: one camera path over the frames (for a
        video prior) instead of independent cameras."""
        self.times = times.detach().float().cpu()
        self.per_step, self.camera_path = per_step, camera_path

    def draw(self, stage: Any) -> tuple[View, bool]:
        c, g = stage.config, stage.generator
        index = stratified_frames(self.times.shape[0], self.per_step, g)
        f = index.shape[0]
        if self.camera_path:
            moving = stage.rand() < c.p_moving_camera
            cameras = (sample_dynamic_cameras if moving else static_camera_clip)(f, c.camera, g)
        else:
            cameras = sample_static_cameras(f, c.camera, g)
        return stage.draw_view(cameras, self.times[index]), bool(index[0] == 0)


def clip_views(clip: Any, config: Any, video_prior: Any = None) -> ClipFrameViews:
    """The sampler of a `ReferenceClip`: F = config.time.num_frames frames a step; a camera path with a video
    prior."""
    return ClipFrameViews(clip.times, config.time.num_frames, camera_path=video_prior is not None)


def clip_terms(config: Any, zero123: Any, clip: Any) -> list[GuidanceTerm]:
    """The per-frame terms of a `ReferenceClip` (Zero123 only when its prior is wired), in the order their losses
    are summed; the video prior, regularisers and smoothness terms are the coarse stage's own."""
    c = config
    zero = ClipZero123SDS(zero123, c.zero123, clip.rgb, clip.times, c.camera) if zero123 is not None else None
    return [t for t in (zero, ClipReconstruction(c.reconstruction, c.reference_size, clip)) if t is not None]


__all__ = ["ClipFrameViews", "clip_terms", "clip_views", "stratified_frames"]
