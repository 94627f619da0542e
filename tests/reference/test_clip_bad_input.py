"""Bad clip input (issue 26, item 5): one line naming the value and the fix, before any model is built."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from a124_core.reference import ClipConfig, build_clip, check_clip_inputs, plan_frames

from .videos import moving_square


def _one_line(err: pytest.ExceptionInfo, *parts: str) -> str:
    message = str(err.value)
    assert "\n" not in message and all(p in message for p in parts), message
    return message


def test_frames_and_masks_of_different_counts():
    frames, masks = moving_square(n=6)
    with pytest.raises(ValueError) as err:
        build_clip(frames, masks[:5] / 255.0, depth_model="/nonexistent/depth")  # checked before the depth model
    _one_line(err, "6 frames but 5 masks", "one mask per frame")


def test_frames_and_masks_of_different_sizes():
    frames, masks = moving_square(n=4)
    with pytest.raises(ValueError) as err:
        build_clip(torch.from_numpy(frames).float() / 255, torch.ones(4, 24, 32))
    _one_line(err, "mask of frame 0 is 32x24 px but the frame is 64x48 px")
    images = [Image.fromarray(f) for f in frames]
    images[2] = images[2].resize((32, 24))
    with pytest.raises(ValueError) as err:
        build_clip(images, masks / 255.0)
    _one_line(err, "Frame 2 is 32x24 px but frame 0 is 64x48 px")
    per_frame_masks = [Image.fromarray(m) for m in masks]
    per_frame_masks[3] = per_frame_masks[3].resize((60, 48))
    with pytest.raises(ValueError) as err:
        build_clip(frames, per_frame_masks)
    _one_line(err, "mask of frame 3 is 60x48 px")


def test_one_frame_clip():
    frames, masks = moving_square(n=1)
    with pytest.raises(ValueError) as err:
        build_clip(frames, masks / 255.0)
    _one_line(err, "has 1 frame; a video needs at least 2", "--image", "Reference node")


def test_empty_mask_names_the_frame():
    frames, masks = moving_square(n=8)
    masks[5] = 0
    masks[7] = 0
    with pytest.raises(ValueError) as err:
        check_clip_inputs(frames, masks / 255.0)
    _one_line(err, "mask of frame 5 (counted from 0) is empty", "2 of the 8 frames used are empty: 5, 7")
    rgba = np.concatenate([frames, masks[..., None]], axis=-1)
    with pytest.raises(ValueError) as err:
        build_clip(rgba)
    _one_line(err, "alpha of frame 5 (counted from 0) is empty")


def test_empty_frame_outside_the_budget_is_not_used():
    frames, masks = moving_square(n=9, step=1)
    masks[1] = 0  # frame 1 is not among the frames kept (0, 2, 4, 6, 8)
    plan = check_clip_inputs(frames, masks / 255.0, config=ClipConfig(max_frames=5))
    assert plan.keep == (0, 2, 4, 6, 8)
    masks[4] = 0
    with pytest.raises(ValueError, match="frame 4 "):
        check_clip_inputs(frames, masks / 255.0, config=ClipConfig(max_frames=5))


def test_inverted_masks_are_named():
    frames, masks = moving_square(n=4)
    with pytest.raises(ValueError) as err:
        build_clip(frames, 1.0 - masks / 255.0)  # ComfyUI's Load Image MASK: 1 = transparent
    _one_line(err, "look inverted", "1 = object")


def test_no_alpha_and_no_rembg_model(no_rembg):
    frames, _ = moving_square(n=4)
    comfy = no_rembg / "ComfyUI" / "models" / "rembg"
    with pytest.raises(FileNotFoundError) as err:
        build_clip(frames, rembg_dirs=[comfy])
    _one_line(err, "clip has no alpha and no masks", str(comfy / "u2net.onnx"), "--mask-video", "Reference Video")
    opaque = np.concatenate([frames, np.full(frames.shape[:3] + (1,), 255, np.uint8)], axis=-1)
    with pytest.raises(FileNotFoundError, match="no alpha and no masks"):
        build_clip(opaque)  # an alpha channel that is opaque everywhere says nothing about the object


def test_values_out_of_range_name_the_frame():
    frames, masks = moving_square(n=3)
    bad = torch.from_numpy(masks).float() / 255
    bad[1, 0, 0] = 3.0
    with pytest.raises(ValueError) as err:
        build_clip(frames, bad)
    _one_line(err, "Frame 1 (mask) is not usable", "expected [0, 1]")


def test_frame_budget_note():
    plan = plan_frames(120, 48, fps=24.0, what="video")
    assert plan.stride == 3 and plan.keep == tuple(range(0, 120, 3)) and plan.clip_fps == 8.0
    assert plan.note == (
        "The video has 120 frames, more than the frame budget of 48: every 3rd frame is used (40 frames: 0, 3, ..., "
        "117) over the whole 4.96 s at 8 fps; trim the video or raise the frame budget to keep more."
    )
    assert plan_frames(48, 48).note is None and plan_frames(48, 48).stride == 1
    assert "every 2nd frame" in plan_frames(49, 48).note
    assert "s at" not in plan_frames(100, 10).note  # no frame rate known: no duration claimed
