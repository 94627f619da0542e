"""The reference clip (issue 26): one crop for the whole clip, times, nearest-frame resampling, the first frame as
the static stage's reference, and the safetensors round trip."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from a124_core.reference import ClipConfig, ReferenceClip, build_clip, build_reference
from a124_core.reference.clip_build import union_bbox

from .videos import moving_square


def _centroid_x(mask: torch.Tensor) -> float:
    """Mean column of a [1, S, S] mask."""
    cols = torch.arange(mask.shape[-1], dtype=torch.float32)
    return float((mask[0].sum(0) * cols).sum() / mask[0].sum())


def test_one_crop_for_the_whole_clip_keeps_the_motion():
    frames, masks = moving_square(n=10, step=3)
    clip = build_clip(frames, masks / 255.0, fps=24.0)
    assert clip.rgb.shape == (10, 3, 256, 256) and clip.mask.shape == (10, 1, 256, 256)
    assert clip.foreground_source == "mask" and clip.depth is None and clip.fps == 24.0
    # union box: columns 4 .. 4 + 3 * 9 + 16, rows of the square; the longer side spans 1 - 2 * 0.2 of the frame
    assert clip.meta["bbox"] == [16, 32, 4, 47]
    scale = 256 * 0.6 / 43  # output px per input px
    moved = [_centroid_x(m) for m in clip.mask]
    steps = np.diff(moved)
    assert np.allclose(steps, 3 * scale, atol=0.6), steps  # the square moves 3 input px a frame, as in the input
    sizes = clip.mask.sum(dim=(1, 2, 3))
    assert float(sizes.max() - sizes.min()) <= 0.03 * float(sizes.mean())  # and never changes size (no zoom)
    # a per-frame crop would centre the square in every frame: the shared crop leaves it where the input has it
    assert moved[0] < 128 - 40 and moved[-1] > 128 + 40


def test_times_and_nearest_frame_resampling():
    frames, masks = moving_square(n=7)
    clip = build_clip(frames, masks / 255.0)
    assert torch.allclose(clip.times, torch.arange(7) / 6.0)
    assert clip.nearest_index(torch.tensor([0.0, 0.08, 0.09, 0.5, 1.0])).tolist() == [0, 0, 1, 3, 6]
    at = clip.at_times([1.0, 0.34, 0.0])
    assert at.source_index.tolist() == [6, 2, 0] and torch.equal(at.times, torch.tensor([1.0, 0.34, 0.0]))
    assert torch.equal(at.rgb[0], clip.rgb[6]) and torch.equal(at.mask[1], clip.mask[2])
    lattice = clip.resample(4)
    assert lattice.source_index.tolist() == [0, 2, 4, 6]
    assert lattice.first is clip.first  # the static stage's reference stays source frame 0
    with pytest.raises(ValueError, match=r"times must lie in \[0, 1\]"):
        clip.at_times([1.5])


def test_first_frame_is_the_single_image_reference_with_the_clip_crop():
    """When frame 0's own box is the union box, the clip's first reference IS build_reference of frame 0."""
    h, w = 80, 100
    yy, xx = np.mgrid[:h, :w]
    frames, masks = [], []
    for radius in (30, 26, 22, 18):  # a disc shrinking in place: frame 0 holds every later frame
        inside = (yy - 40.5) ** 2 + (xx - 50.5) ** 2 < radius**2
        rgb = np.full((h, w, 3), 255, np.uint8)
        rgb[inside] = (30, 160, 90)
        frames.append(rgb)
        masks.append(inside.astype(np.float32))
    clip = build_clip(np.stack(frames), np.stack(masks))
    single = build_reference(frames[0], mask=masks[0])
    first = clip.first_reference()
    for name in ("rgb", "alpha", "mask", "rgba_512", "preview"):
        assert torch.equal(getattr(first, name), getattr(single, name)), name
    assert first.meta["bbox"] == single.meta["bbox"] == clip.meta["bbox"]
    assert torch.equal(clip.rgb[0], single.rgb)
    assert float(clip.mask[-1].sum()) < 0.5 * float(clip.mask[0].sum())  # later frames keep frame 0's scale


def test_union_bbox_covers_every_frame():
    a = torch.zeros(3, 20, 30)
    a[0, 2:5, 3:6] = 1
    a[1, 10:12, 1:2] = 1
    a[2, 4:6, 20:29] = 1
    assert union_bbox(list(a), 0.5) == (2, 12, 1, 29)


def test_alpha_frames_and_depth_maps():
    frames, masks = moving_square(n=5)
    rgba = np.concatenate([frames, masks[..., None]], axis=-1)
    ramp = np.tile(np.linspace(0.0, 1.0, frames.shape[2], dtype=np.float32), (5, frames.shape[1], 1))
    clip = build_clip(rgba, depth=ramp)
    from_masks = build_clip(frames, masks / 255.0)
    assert clip.foreground_source == "alpha" and torch.equal(clip.mask, from_masks.mask)
    assert clip.depth is not None and clip.depth.shape == (5, 1, 256, 256) and clip.depth_source == "image"
    inside = clip.mask[0, 0] > 0
    assert float(clip.depth[0, 0][inside].min()) == 0.0 and float(clip.depth[0, 0][inside].max()) == 1.0
    assert float(clip.depth[0, 0][~inside].abs().max()) == 0.0


def test_frame_budget_keeps_every_kth_frame():
    frames, masks = moving_square(n=20, step=1)
    clip = build_clip(frames, masks / 255.0, fps=30.0, config=ClipConfig(max_frames=8))
    assert clip.source_index.tolist() == [0, 3, 6, 9, 12, 15, 18]
    assert clip.fps == 10.0 and torch.allclose(clip.times, torch.arange(7) / 6.0)
    assert "every 3rd frame is used (7 frames: 0, 3, ..., 18)" in clip.meta["frames_note"]


def test_save_and_load_round_trip(tmp_path):
    frames, masks = moving_square(n=4)
    ramp = np.tile(np.linspace(0.0, 1.0, frames.shape[2], dtype=np.float32), (4, frames.shape[1], 1))
    clip = build_clip(frames, masks / 255.0, depth=ramp, fps=12.0).at_times([0.0, 0.5, 1.0])
    path = clip.save(tmp_path / "clip.safetensors")
    loaded = ReferenceClip.load(path)
    for name in ("rgb", "alpha", "mask", "times", "depth", "source_index"):
        assert torch.equal(getattr(loaded, name), getattr(clip, name)), name
    assert loaded.fps == 12.0 and loaded.meta == clip.meta and loaded.foreground_source == "mask"
    first, again = clip.first_reference(), loaded.first_reference()
    for name in ("rgb", "alpha", "mask", "depth", "rgba_512", "preview"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    assert again.meta == first.meta and again.border_ratio == first.border_ratio
    assert [p.name for p in tmp_path.iterdir()] == ["clip.safetensors"]  # no temporary file left behind
    shared = replace(clip, first=replace(clip.first, rgb=clip.rgb[0]))  # a view of the clip's frames
    assert torch.equal(ReferenceClip.load(shared.save(tmp_path / "shared.safetensors")).first.rgb, clip.rgb[0])
    single = tmp_path / "reference.safetensors"
    first.save(single)
    with pytest.raises(ValueError, match="not a reference clip"):
        ReferenceClip.load(single)


def test_rembg_per_frame_with_one_session(empty_homes, monkeypatch):
    rembg = pytest.importorskip("rembg")  # first import compiles numba (~1 min, cached afterwards)
    from .tiny_rembg import write_brightness_u2net

    frames, masks = moving_square(n=5, h=96, w=128, side=32, step=6)
    dark = np.where(masks[..., None] > 0, np.uint8(230), np.uint8(20)).repeat(3, -1)  # bright object, dark ground
    comfy = empty_homes / "ComfyUI" / "models" / "rembg"
    write_brightness_u2net(comfy / "u2net.onnx")
    sessions = []
    new_session = rembg.new_session
    monkeypatch.setattr(rembg, "new_session", lambda *a, **k: sessions.append(a) or new_session(*a, **k))
    clip = build_clip(dark, rembg_dirs=[comfy])
    expected = build_clip(dark, masks / 255.0)
    assert clip.foreground_source == "rembg:u2net" and len(sessions) == 1
    inter = (clip.mask.bool() & expected.mask.bool()).sum(dim=(1, 2, 3))
    union = (clip.mask.bool() | expected.mask.bool()).sum(dim=(1, 2, 3))
    assert float((inter / union).min()) >= 0.95, inter / union


def test_depth_model_per_frame(tiny_dpt, tmp_path):
    frames, masks = moving_square(n=3)
    clip = build_clip(frames, masks / 255.0, depth_model=tiny_dpt)
    assert clip.depth is not None and clip.depth.shape == (3, 1, 256, 256) and clip.depth_source == "model:dpt-tiny"
    assert float(clip.depth[:, 0][clip.mask[:, 0] == 0].abs().max()) == 0.0
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_clip(frames, masks / 255.0, depth_model=tmp_path / "missing")
    with pytest.raises(ValueError, match="either depth maps or a depth model"):
        build_clip(frames, masks / 255.0, depth=np.ones((3, 48, 64), np.float32), depth_model=tiny_dpt)


def test_box_onto_maps_one_box_onto_another():
    from a124_core.reference.recentre import box_onto

    assert box_onto((10, 30, 20, 40), (0.25, 0.75, 0.25, 0.75)) == (0.0, 40.0, 10.0, 50.0)
    assert box_onto((10, 30, 20, 40), (0.0, 0.5, 0.5, 1.0)) == (10.0, 50.0, 0.0, 40.0)  # object at the top right
    with pytest.raises(ValueError, match="non-empty"):
        box_onto((10, 10, 20, 40), (0.25, 0.75, 0.25, 0.75))


def test_first_box_crops_frame_0_onto_the_given_box_for_the_whole_clip():
    """A video of a render (mesh from video) is cropped back onto the render's framing: frame 0's object lands on
    the given box, every frame shares the crop (the motion stays), and nothing is recentred around the motion."""
    from a124_core.reference.recentre import object_bbox

    frames, masks = moving_square(n=6, step=3)
    target = (0.375, 0.625, 0.25, 0.5)  # a 64 px square at rows 96..160, columns 64..128 of 256
    clip = build_clip(frames, masks / 255.0, first_box=target)
    y0, y1, x0, x1 = object_bbox(clip.mask[0, 0])
    assert abs(y0 - 96) <= 1 and abs(y1 - 160) <= 1 and abs(x0 - 64) <= 1 and abs(x1 - 128) <= 1
    moved = [_centroid_x(m) for m in clip.mask]
    assert np.allclose(np.diff(moved), 3 * 64 / 16, atol=0.6)  # 3 input px a frame at 4 output px per input px
    assert clip.border_ratio == 0.0 and clip.meta["framing"].startswith("frame 0 onto")
    assert build_clip(frames, masks / 255.0).meta["framing"] == "union box"
