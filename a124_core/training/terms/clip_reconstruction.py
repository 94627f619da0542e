"""Per-frame reference-view reconstruction of a video clip (video-to-4D, issue 26).

Every step renders the reference camera at the times of the step's frames (the clip's own frame times, drawn by
`training/video_clip.py`) with ambient 1 on white, and compares colour, silhouette and (when the clip has depth)
depth with the frame of each time. The lambdas are the single-image reconstruction's (`ReconstructionConfig`),
averaged over the step's frames; the depth correlation is taken per frame, since each frame's depth was
normalised on its own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from .. import losses as L
from ..view import View
from .base import GuidanceTerm, StepContext
from .clip_frames import clip_targets, nearest_frames
from .reconstruction import ReconstructionConfig


def reference_views(reference: View, times: Tensor) -> View:
    """The reference camera (albedo on white) once per time [K]."""
    return replace(reference.select([0] * times.shape[0]), times=times)


def per_frame_depth_loss(pred_depth: Tensor, gt_depth: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean over frames of (1 - pearson(-pred, gt)) / 2 over each frame's masked pixels; all [K, H, W, 1].

    `losses.depth_loss` frame by frame, without its boolean indexing (no host sync)."""
    m = mask.flatten(1)
    pred, gt = -pred_depth.flatten(1), gt_depth.flatten(1)
    count = m.sum(1, keepdim=True).clamp_min(1.0)
    pc = (pred - (pred * m).sum(1, keepdim=True) / count) * m
    gc = (gt - (gt * m).sum(1, keepdim=True) / count) * m
    corr = (pc * gc).sum(1) / (pc.norm(dim=1) * gc.norm(dim=1) + eps)
    return ((1.0 - corr) / 2.0).mean()


class ClipReconstruction(GuidanceTerm):
    """Colour, mask and depth of each of the step's frames from the reference camera, at the frame's time."""

    name = "reconstruction"

    def __init__(self, config: ReconstructionConfig, size: int, clip: Any):
        """
        Args:
            size: side of the reference-view renders (the stage's reference_size); targets are resized to it once.
            clip: a `ReferenceClip` (rgb [N, 3, S, S] on white, mask [N, 1, S, S], depth [N, 1, S, S] or None,
                times [N]) whose frames were filmed from the stage's reference camera.
        """
        super().__init__()
        self.config, self.size = config, size
        self.targets = clip_targets(clip, size)

    def attach(self, device: torch.device) -> None:
        self.targets = {k: None if v is None else v.to(device) for k, v in self.targets.items()}

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        times = ctx.view.times
        if times is None or ctx.reference_view is None:
            return {}
        out = ctx.render_view(reference_views(ctx.reference_view, times), self.size)
        t = self.targets
        index = nearest_frames(t["times"], times)
        mask = t["mask"][index]
        w = self.config
        losses = {
            "rgb": w.rgb * L.rgb_loss(out["rgb"], t["rgb"][index], mask),
            "mask": w.mask * L.mask_loss(out["opacity"], mask),
        }
        if t["depth"] is not None and w.depth > 0:
            losses["depth"] = w.depth * per_frame_depth_loss(out["depth"], t["depth"][index], mask)
        return losses


__all__ = ["ClipReconstruction", "per_frame_depth_loss", "reference_views"]
