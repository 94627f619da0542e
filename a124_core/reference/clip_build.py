"""Building a `ReferenceClip` from an image batch (ComfyUI IMAGE / MASK) or a video file (+ mask video).

Both entries check everything first (`clip_inputs.py`), then work in two passes over the kept frames so that only
one frame is ever held at full float size: pass 1 finds each frame's alpha (its mask, its own alpha, or rembg with
one session for the clip) and the union of the object boxes; pass 2 recentres every frame on that one box with the
single-image code (`recentred_reference`), so frame 0 of a clip and `build_reference` of the same image with the
same box are bit-identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .clip import ClipConfig, ReferenceClip
from .clip_inputs import (
    CLIP_ALTERNATIVES,
    CLIP_NEED,
    FramePlan,
    Frames,
    VideoPlan,
    check_clip_inputs,
    check_clip_masks,
    check_clip_shapes,
    check_clip_video,
    clip_alphas,
    frame_at,
    per_frame,
)
from .depth import DepthEstimator
from .foreground import find_rembg_model, rembg_session, remove_background
from .inputs import prepare_inputs
from .recentre import box_onto, object_bbox
from .reference import recentred_reference
from .video_file import read_video

Box = tuple[float, float, float, float]  # (y0, y1, x0, x1)


def build_clip(
    frames: Frames,
    masks: Frames | None = None,
    depth: Frames | None = None,
    *,
    fps: float = 0.0,
    depth_model: str | Path | DepthEstimator | None = None,
    rembg_dirs: Sequence[str | Path] = (),
    config: ClipConfig | None = None,
    first_box: Box | None = None,
    device: str | torch.device = "cpu",
) -> ReferenceClip:
    """A `ReferenceClip` from frames [N, H, W, C] (+ masks [N, H, W] with 1 = object, + depth maps [N, H, W]).

    Foreground, in order: `masks`; the frames' alpha (unless opaque in every frame); rembg per frame. `fps` is the
    frames' rate when known (a VIDEO's), kept for the clip's timing and the frame-budget note. `first_box`
    (y0, y1, x0, x1 as fractions of the output square) replaces the recentring: the one crop puts frame 0's object
    box there (a video of a render, cropped back onto that render's framing: mesh from video).
    """
    cfg = config or ClipConfig()
    named_model = depth_model if not isinstance(depth_model, DepthEstimator) else None
    plan = check_clip_inputs(frames, masks, depth, fps=fps, depth_model=named_model, rembg_dirs=rembg_dirs, config=cfg)
    pick = list(plan.keep)
    return _assemble(
        [frame_at(frames, i) for i in pick],
        None if masks is None else [frame_at(masks, i) for i in pick],
        None if depth is None else [frame_at(depth, i) for i in pick],
        plan,
        cfg,
        depth_model=depth_model,
        rembg_dirs=rembg_dirs,
        first_box=first_box,
        device=device,
    )


def load_clip_video(
    video: str | Path,
    mask_video: str | Path | None = None,
    *,
    depth_model: str | Path | DepthEstimator | None = None,
    rembg_dirs: Sequence[str | Path] = (),
    config: ClipConfig | None = None,
    plan: VideoPlan | None = None,
    first_box: Box | None = None,
    device: str | torch.device = "cpu",
) -> ReferenceClip:
    """A `ReferenceClip` from a video file; the mask video (white = object) or the video's alpha or rembg cut it out.

    `plan` is the result of `check_clip_video` when the runner already called it (the files are probed once);
    `first_box` as in `build_clip`.
    """
    cfg = config or ClipConfig()
    if plan is None:
        named_model = depth_model if not isinstance(depth_model, DepthEstimator) else None
        plan = check_clip_video(video, mask_video, depth_model=named_model, rembg_dirs=rembg_dirs, config=cfg)
    keep = plan.frames.keep
    frames = read_video(plan.video, keep, cfg.max_input_side, what="video")
    masks = None
    if plan.mask is not None:
        masks = read_video(plan.mask, keep, cfg.max_input_side, alpha=False, what="mask video").mean(-1) / 255.0
    meta = {"video": str(plan.video.path), "mask_video": None if plan.mask is None else str(plan.mask.path)}
    return _assemble(
        list(frames),
        None if masks is None else list(masks.astype(np.float32)),
        None,
        plan.frames,
        cfg,
        depth_model=depth_model,
        rembg_dirs=rembg_dirs,
        first_box=first_box,
        device=device,
        meta=meta,
    )


def _foreground(
    images: list[Any], masks: list[Any] | None, plan: FramePlan, cfg: ClipConfig, rembg_dirs: Sequence[str | Path]
) -> tuple[list[torch.Tensor], str]:
    """Pass 1: each kept frame's alpha [H, W] at the working size, and where it came from."""
    rc = cfg.reference
    kept = list(range(len(images)))

    def raw(k: int) -> Any:
        mask = None if masks is None else masks[k]

        def convert(image: Any) -> Any:
            return prepare_inputs(image, mask, None, rc.min_input_side, cfg.max_input_side)

        return per_frame(convert, images, k, "image" if mask is None else "image or mask", plan.keep[k])

    if masks is not None:
        return [raw(k).mask for k in kept], "mask"
    if clip_alphas(images) is not None:
        alphas = []
        for k in kept:
            r = raw(k)
            alphas.append(r.alpha if r.alpha is not None else torch.ones(r.rgb.shape[-2:]))
        return alphas, "alpha"
    model_path = find_rembg_model(rc.rembg_model, rembg_dirs, CLIP_NEED, CLIP_ALTERNATIVES)
    session = rembg_session(model_path, rc.rembg_model)
    return [
        remove_background(raw(k).rgb, model_path, rc.rembg_model, session) for k in kept
    ], f"rembg:{rc.rembg_model}"


def union_bbox(alphas: Sequence[torch.Tensor], threshold: float) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) covering every frame's object box: the clip's one crop."""
    boxes = [object_bbox(a, threshold) for a in alphas]
    return min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes)


def _assemble(
    images: list[Any],
    masks: list[Any] | None,
    depths: list[Any] | None,
    plan: FramePlan,
    cfg: ClipConfig,
    *,
    depth_model: str | Path | DepthEstimator | None,
    rembg_dirs: Sequence[str | Path],
    device: str | torch.device,
    first_box: Box | None = None,
    meta: dict | None = None,
) -> ReferenceClip:
    rc = cfg.reference
    check_clip_shapes(images, masks, depths)
    alphas, source = _foreground(images, masks, plan, cfg, rembg_dirs)
    check_clip_masks(alphas, rc.mask_threshold, "rembg mask" if source.startswith("rembg") else source, plan.keep)
    bbox: Box = union_bbox(alphas, rc.mask_threshold)
    if first_box is not None:  # frame 0's object box onto the given one; the crop is the whole framing
        bbox, rc = box_onto(object_bbox(alphas[0], rc.mask_threshold), first_box), replace(rc, border_ratio=0.0)
    estimator = None
    if depths is None and depth_model is not None:
        estimator = depth_model if isinstance(depth_model, DepthEstimator) else DepthEstimator(depth_model, device)

    refs = []
    for k, alpha in enumerate(alphas):  # pass 2: one crop for every frame
        number = plan.keep[k]
        depth = None if depths is None else depths[k]
        raw = per_frame(
            lambda im, d=depth: prepare_inputs(im, None, d, rc.min_input_side, cfg.max_input_side),
            images,
            k,
            "image" if depth is None else "image or depth map",
            number,
        )
        frame_meta = {"input_size": list(raw.rgb.shape[-2:]), "downscaled": raw.downscaled}
        refs.append(
            recentred_reference(
                raw.rgb,
                alpha,
                raw.depth,
                bbox,
                rc,
                source=source,
                estimator=estimator,
                meta=frame_meta,
                depth_name=f"depth map of frame {number}",
            )
        )
    n = len(refs)
    clip_meta = {
        **(meta or {}),
        "input_size": refs[0].meta["input_size"],
        "bbox": list(bbox),
        "framing": "union box" if first_box is None else f"frame 0 onto {[round(v, 4) for v in first_box]}",
        "frames_total": plan.total,
        "stride": plan.stride,
        "source_fps": plan.fps,
        "frames_note": plan.note,
        "config": asdict(cfg),
    }
    clip = ReferenceClip(
        rgb=torch.stack([r.rgb for r in refs]),
        alpha=torch.stack([r.alpha for r in refs]),
        mask=torch.stack([r.mask for r in refs]),
        times=torch.linspace(0.0, 1.0, n),
        depth=None if refs[0].depth is None else torch.stack([r.depth for r in refs]),
        source_index=torch.tensor(plan.keep, dtype=torch.long),
        first=refs[0],
        fps=plan.clip_fps,
        foreground_source=source,
        depth_source=refs[0].depth_source,
        meta=clip_meta,
    )
    return clip.to(device)
