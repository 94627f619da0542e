"""What the per-frame terms of a reference clip share: frame lookup by time, targets at the render size, and
per-frame conditions stacked so that one prior call serves a batch of frames of different times.

A clip's frame i is at `times[i]`; the stage renders its frames at exactly those times, so the nearest frame of a
render's time is its own frame (and a render at any other time gets the nearest real frame, never a blend).
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def nearest_frames(frame_times: Tensor, times: Tensor) -> Tensor:
    """Index [K] (long) of the frame nearest to each time [K]; frame_times [N] increasing. No host sync."""
    return (times.to(frame_times)[:, None] - frame_times[None, :]).abs().argmin(dim=1)


def resized_frames(frames: Tensor, size: int, mode: str) -> Tensor:
    """frames [N, C, H, W] -> [N, size, size, C] (the renderer's channel-last layout), antialiased when bilinear."""
    x = frames.float()
    if x.shape[-1] != size or x.shape[-2] != size:
        extra = {"antialias": True} if mode == "bilinear" else {}
        x = F.interpolate(x, size=(size, size), mode=mode, **extra)
    return x.permute(0, 2, 3, 1).contiguous()


def clip_targets(clip: Any, size: int) -> dict[str, Tensor | None]:
    """rgb [N, S, S, 3] on white, mask [N, S, S, 1] in {0, 1}, depth [N, S, S, 1] or None, times [N] of a
    `ReferenceClip` at the reference renders' side S."""
    mask = (resized_frames(clip.mask, size, "bilinear") > 0.5).float()
    empty = torch.nonzero(mask.flatten(1).sum(1) == 0).flatten().tolist()
    if empty:
        raise ValueError(
            f"Frames {empty} of the clip have no foreground at {size} px; pass masks that cover the object in "
            "every frame (or a larger reference_size)."
        )
    depth = None if clip.depth is None else resized_frames(clip.depth, size, "bilinear")
    return {
        "rgb": resized_frames(clip.rgb, size, "bilinear").clamp(0, 1),
        "mask": mask,
        "depth": depth,
        "times": clip.times.float().clone(),
    }


def stack_conditions(conditions: list[Any]) -> Any:
    """One condition whose row i is `conditions[i]` (each with one row): tensors are concatenated along dim 0,
    dataclasses field by field (a Zero123 reference's CLIP embedding [1, 1, D] and latent [1, 4, h, w])."""
    first = conditions[0]
    if isinstance(first, Tensor):
        return torch.cat(conditions)
    if is_dataclass(first):
        tensors = {f.name for f in fields(first) if isinstance(getattr(first, f.name), Tensor)}
        return replace(first, **{name: torch.cat([getattr(c, name) for c in conditions]) for name in tensors})
    raise TypeError(f"Cannot stack conditions of type {type(first).__name__}: expected tensors or dataclasses.")


def condition_rows(condition: Any, index: Tensor) -> Any:
    """The rows `index` [K] of a stacked condition (`stack_conditions`), in that order."""
    if isinstance(condition, Tensor):
        return condition[index.to(condition.device)]
    values = {f.name: getattr(condition, f.name) for f in fields(condition)}
    return replace(condition, **{k: v[index.to(v.device)] for k, v in values.items() if isinstance(v, Tensor)})


__all__ = ["clip_targets", "condition_rows", "nearest_frames", "resized_frames", "stack_conditions"]
