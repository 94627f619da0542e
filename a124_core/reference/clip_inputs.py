"""Checks of a reference clip's inputs, run before anything is decoded at full size or any model is built.

Every check raises one line naming the value and the fix (issue 26, "Bad input"): frames and masks of different
counts or sizes, a one-frame clip, an empty mask in some frame (which ones), masks that look inverted, a
variable-frame-rate or undecodable file, no alpha and no rembg model. A clip longer than the frame budget is not an
error: `plan_frames` keeps every k-th frame and says so in one line.

Accepted frames: a ComfyUI IMAGE batch (float tensor [N, H, W, C], C = 1, 3 or 4, values in [0, 1]), a numpy array
of the same layout (uint8 is divided by 255), or a sequence of per-frame images of any kind `inputs.py` accepts.
Masks: a batch [N, H, W] (or a sequence of per-frame masks) with 1 = object. ComfyUI's Load Image MASK is
1 - alpha (1 = transparent): the node inverts such masks before they reach the library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .clip import ClipConfig
from .depth import check_depth_model_dir
from .foreground import find_rembg_model
from .inputs import _mask_to_tensor, _size_of
from .video_file import VideoInfo, check_constant_rate, probe_video

#: Why rembg is needed for a clip and what else the user can pass (`find_rembg_model`'s message).
CLIP_NEED = "The clip has no alpha and no masks were given"
CLIP_ALTERNATIVES = (
    "Command line: pass --mask-video MASK.mp4 (white = object) or a video with alpha (PNG or ProRes 4444 .mov, VP9 "
    ".webm, animated WebP), or put {file} (https://github.com/danielgatis/rembg/releases) into "
    "<--models-dir>/rembg/ (another model: --rembg-model). ComfyUI: wire a MASK batch into the Reference Video "
    "node's mask input or put {file} in ComfyUI/models/rembg/."
)

Frames = Tensor | np.ndarray | Sequence[Any]


@dataclass(frozen=True)
class FramePlan:
    """Which source frames a clip uses: all of them, or every `stride`-th one when they exceed the budget."""

    total: int
    """Frames in the input."""
    keep: tuple[int, ...]
    """Source indices used, increasing."""
    stride: int
    """Distance between kept frames (1 = all)."""
    fps: float
    """Frame rate of the input (0 when unknown, e.g. an image batch without a rate)."""
    note: str | None
    """One line saying what is kept when the input exceeds the budget; None when everything is used."""

    @property
    def clip_fps(self) -> float:
        """Frame rate of the kept frames."""
        return self.fps / self.stride


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def plan_frames(total: int, max_frames: int, fps: float = 0.0, what: str = "clip") -> FramePlan:
    """Keep every k-th frame, k = ceil(total / max_frames): the whole motion at a lower frame rate.

    Subsampling rather than cutting keeps the clip's last moments (a video model's clip usually ends where the motion
    does), and a whole-number stride keeps frames evenly spaced, so time i / (N - 1) stays the real time.
    """
    if total < 2:
        raise ValueError(
            f"The {what} has {total} frame{'s' if total != 1 else ''}; a video needs at least 2 (for a single image "
            "use the image-to-4D path: --image on the command line, the Reference node in ComfyUI)."
        )
    if max_frames < 2:
        raise ValueError(f"The frame budget is {max_frames}; it must be at least 2 frames.")
    stride = max(1, math.ceil(total / max_frames))
    keep = tuple(range(0, total, stride))
    note = None
    if stride > 1:
        span = f": {keep[0]}, {keep[1]}, ..., {keep[-1]}" if len(keep) > 2 else f": {', '.join(map(str, keep))}"
        timing = f" over the whole {(total - 1) / fps:.2f} s at {fps / stride:.3g} fps" if fps > 0 else ""
        note = (
            f"The {what} has {total} frames, more than the frame budget of {max_frames}: every {_ordinal(stride)} "
            f"frame is used ({len(keep)} frames{span}){timing}; trim the {what} or raise the frame budget to keep "
            "more."
        )
    return FramePlan(total=total, keep=keep, stride=stride, fps=float(fps), note=note)


def clip_length(frames: Frames, what: str = "frames") -> int:
    """N of a batch [N, ...] or a sequence of N images."""
    if isinstance(frames, (Tensor, np.ndarray)):
        if frames.ndim not in (3, 4):
            raise ValueError(
                f"The {what} batch has shape {tuple(frames.shape)}; expected [N, H, W, C] (a ComfyUI IMAGE batch) "
                "or [N, H, W] for masks."
            )
        return int(frames.shape[0])
    if isinstance(frames, (str, Path, Image.Image)) or not isinstance(frames, Sequence):
        raise ValueError(
            f"The {what} must be a batch tensor/array [N, H, W, C] or a sequence of images, got "
            f"{type(frames).__name__}."
        )
    return len(frames)


def frame_at(frames: Frames, index: int) -> Any:
    """Frame `index` of a batch or a sequence (a view, never a copy of the batch)."""
    return frames[index]


def frame_size(frames: Frames, index: int, what: str = "frame") -> tuple[int, int]:
    """(H, W) of frame `index`."""
    return _size_of(frame_at(frames, index), what)


def check_clip_shapes(frames: Frames, masks: Frames | None = None, depth: Frames | None = None) -> int:
    """Counts and sizes: every frame one size, one mask (and depth map) per frame at the frame's size. Returns N."""
    n = clip_length(frames, "frames")
    if n < 2:
        plan_frames(n, 2)  # the one-frame message
    h, w = frame_size(frames, 0)
    if not isinstance(frames, (Tensor, np.ndarray)):
        for i in range(1, n):
            if frame_size(frames, i) != (h, w):
                fh, fw = frame_size(frames, i)
                raise ValueError(
                    f"Frame {i} is {fw}x{fh} px but frame 0 is {w}x{h} px; all frames of a clip must have one size."
                )
    for name, batch in (("mask", masks), ("depth map", depth)):
        if batch is None:
            continue
        count = clip_length(batch, f"{name}s")
        if count != n:
            raise ValueError(
                f"The clip has {n} frames but {count} {name}s; pass one {name} per frame (batches of the same length)."
            )
        for i in range(count if not isinstance(batch, (Tensor, np.ndarray)) else 1):
            mh, mw = frame_size(batch, i, "mask" if name == "mask" else "depth")
            bad = (mh, mw) != (h, w) if name == "mask" else abs(mh / mw - h / w) > 0.01 * h / w
            if bad:
                raise ValueError(
                    f"The {name} of frame {i} is {mw}x{mh} px but the frame is {w}x{h} px; pass the {name}s made for "
                    f"these frames (or resize them to the frame size)."
                )
    return n


def per_frame(convert: Any, batch: Frames, index: int, what: str, number: int | None = None) -> Any:
    """convert(batch[index]), with the frame (input frame `number`, default `index`) named in a conversion error."""
    try:
        return convert(frame_at(batch, index))
    except ValueError as err:
        raise ValueError(f"Frame {index if number is None else number} ({what}) is not usable: {err}") from None


def _describe(indices: list[int], total: int) -> str:
    shown = ", ".join(map(str, indices[:8])) + (", ..." if len(indices) > 8 else "")
    return f"{len(indices)} of the {total} frames used are empty: {shown}"


def check_clip_masks(
    masks: Sequence[Tensor], threshold: float, source: str = "mask", frame_numbers: Sequence[int] | None = None
) -> None:
    """Every frame's mask ([H, W] in [0, 1], 1 = object) covers some pixels, and the masks are not inverted.

    `frame_numbers` are the masks' frame indices in the input (counted from 0), named in the message.
    """
    numbers = list(range(len(masks))) if frame_numbers is None else list(frame_numbers)
    empty = [numbers[i] for i, m in enumerate(masks) if not bool((m > threshold).any())]
    if empty:
        raise ValueError(
            f"The {source} of frame {empty[0]} (counted from 0) is empty, no pixel above {threshold} "
            f"({_describe(empty, len(masks))}); pass {source}s that cover the object in every frame, or cut the "
            "frames without the object from the clip."
        )

    def whole_border(m: Tensor) -> bool:
        fg = m > threshold
        return bool(fg[0].all() and fg[-1].all() and fg[:, 0].all() and fg[:, -1].all())

    if all(whole_border(m) for m in masks) and not all(bool((m > threshold).all()) for m in masks):
        raise ValueError(
            f"The {source}s cover the whole border of every frame, so they look inverted (ComfyUI's Load Image MASK "
            "is 1 = transparent); invert them so that 1 = object."
        )


def frame_alpha(frame: Any) -> Tensor | None:
    """The alpha [H, W] of an RGBA/LA frame, None without an alpha channel (values as `inputs.py` reads them)."""
    if isinstance(frame, Image.Image):
        if frame.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (frame.mode == "P" and "transparency" in frame.info):
            return torch.from_numpy(np.asarray(frame.convert("RGBA"))[..., 3].copy()).float() / 255.0
        return None
    if isinstance(frame, (Tensor, np.ndarray)) and frame.ndim == 3 and frame.shape[-1] == 4:
        return _mask_to_tensor(frame[..., 3])
    return None


def clip_alphas(frames: Frames) -> list[Tensor] | None:
    """Per-frame alpha when the frames carry alpha that is not opaque everywhere; None otherwise."""
    alphas = [frame_alpha(frame_at(frames, i)) for i in range(clip_length(frames))]
    if any(a is None for a in alphas) or all(bool((a > 1 - 0.5 / 255).all()) for a in alphas):
        return None
    return alphas


def check_clip_inputs(
    frames: Frames,
    masks: Frames | None = None,
    depth: Frames | None = None,
    *,
    fps: float = 0.0,
    depth_model: str | Path | None = None,
    rembg_dirs: Sequence[str | Path] = (),
    config: ClipConfig | None = None,
) -> FramePlan:
    """Every check of a clip given as frames (+ masks, depth) that needs no model; returns the frame plan.

    Counts and sizes, the masks (or the frames' alpha) of every kept frame, the depth model folder, and without masks
    or alpha the rembg model file. A runner calls this before it builds or writes anything.
    """
    cfg = config or ClipConfig()
    threshold = cfg.reference.mask_threshold
    n = check_clip_shapes(frames, masks, depth)
    plan = plan_frames(n, cfg.max_frames, fps)
    if depth is not None and depth_model is not None:
        raise ValueError("Pass either depth maps or a depth model, not both (the depth maps would win silently).")
    if isinstance(depth_model, (str, Path)):
        check_depth_model_dir(depth_model)
    if masks is not None:
        kept = [per_frame(_mask_to_tensor, masks, i, "mask") for i in plan.keep]
        check_clip_masks(kept, threshold, "mask", plan.keep)
        return plan
    alphas = clip_alphas(frames)
    if alphas is not None:
        check_clip_masks([alphas[i] for i in plan.keep], threshold, "alpha", plan.keep)
    else:
        find_rembg_model(cfg.reference.rembg_model, rembg_dirs, CLIP_NEED, CLIP_ALTERNATIVES)
    return plan


@dataclass(frozen=True)
class VideoPlan:
    """A checked video file (and mask video): what the probe found and which frames are used."""

    video: VideoInfo
    mask: VideoInfo | None
    frames: FramePlan


def check_clip_video(
    video: str | Path,
    mask_video: str | Path | None = None,
    *,
    depth_model: str | Path | None = None,
    rembg_dirs: Sequence[str | Path] = (),
    config: ClipConfig | None = None,
) -> VideoPlan:
    """Probe-level checks of a video file (and its mask video), in milliseconds, before any frame is decoded.

    The file decodes to its end, has a constant frame rate and at least 2 frames; a mask video has as many frames
    and the same size; without a mask video, a video without alpha needs the rembg model file. Per-frame checks
    (an empty mask, opaque alpha) run when the frames are decoded, still before any model is built.
    """
    cfg = config or ClipConfig()
    info = probe_video(video, "video")
    check_constant_rate(info, cfg.fps_tolerance, "video")
    plan = plan_frames(info.num_frames, cfg.max_frames, info.fps, "video")
    mask_info = None
    if mask_video is not None:
        mask_info = probe_video(mask_video, "mask video")
        check_constant_rate(mask_info, cfg.fps_tolerance, "mask video")
        if mask_info.num_frames != info.num_frames:
            raise ValueError(
                f"The mask video {mask_info.path} has {mask_info.num_frames} frames but the video has "
                f"{info.num_frames}; pass the mask video made for this video (one mask per frame)."
            )
        if (mask_info.width, mask_info.height) != (info.width, info.height):
            raise ValueError(
                f"The mask video is {mask_info.width}x{mask_info.height} px but the video is "
                f"{info.width}x{info.height} px; pass the mask video made for this video."
            )
    if isinstance(depth_model, (str, Path)):
        check_depth_model_dir(depth_model)
    if mask_info is None and not info.has_alpha:
        find_rembg_model(cfg.reference.rembg_model, rembg_dirs, CLIP_NEED, CLIP_ALTERNATIVES)
    return VideoPlan(video=info, mask=mask_info, frames=plan)
