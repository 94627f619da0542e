"""Reference clips from video files (issue 26): mp4 + mask mp4, per-frame alpha (mov, webm, webp), gif timing, and
the file checks: variable frame rate, truncated or undecodable files, mismatched mask videos, no alpha and no rembg.

Every file is written by the test (tests/reference/videos.py) with imageio-ffmpeg's own ffmpeg.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a124_core.reference import ClipConfig, build_clip, check_clip_video, load_clip_video
from a124_core.reference.video_file import check_constant_rate, probe_video, read_video

from .videos import add_audio, moving_square, write_gif, write_rotated, write_vfr_mp4, write_video, write_webp


def _one_line(err: pytest.ExceptionInfo, *parts: str) -> str:
    message = str(err.value)
    assert "\n" not in message and all(p in message for p in parts), message
    return message


@pytest.fixture(scope="module")
def square():
    return moving_square(n=12)


def _rgba(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    return np.concatenate([frames, masks[..., None]], axis=-1)


def test_mp4_and_mask_mp4_give_the_batch_clip(tmp_path, square):
    frames, masks = square
    video, mask = write_video(tmp_path / "clip.mp4", frames), write_video(tmp_path / "mask.mp4", masks)
    clip = load_clip_video(video, mask)
    batch = build_clip(frames, masks / 255.0, fps=24.0)
    assert len(clip) == 12 and clip.fps == 24.0 and clip.meta["source_fps"] == 24.0
    assert clip.meta["video"] == str(video) and clip.foreground_source == "mask"
    assert clip.meta["bbox"] == batch.meta["bbox"]
    assert float((clip.mask != batch.mask).float().mean()) < 0.002
    assert float((clip.rgb - batch.rgb).abs().mean()) < 2 / 255  # 4:4:4 at qp 0: YUV rounding only


@pytest.mark.parametrize("kind", ["mov-png", "webm-vp9", "webp"])
def test_per_frame_alpha(tmp_path, square, kind):
    frames, masks = square
    rgba = _rgba(frames, masks)
    if kind == "mov-png":
        path = write_video(tmp_path / "clip.mov", rgba, codec="png", pix_fmt="rgba", params=())
    elif kind == "webm-vp9":
        path = write_video(
            tmp_path / "clip.webm", rgba, codec="libvpx-vp9", pix_fmt="yuva420p", params=("-lossless", "1")
        )
    else:
        path = write_webp(tmp_path / "clip.webp", rgba)
    assert probe_video(path).has_alpha
    clip = load_clip_video(path)
    batch = build_clip(rgba)
    assert clip.foreground_source == "alpha" and len(clip) == 12
    assert float((clip.mask != batch.mask).float().mean()) < 0.002, kind
    assert abs(clip.fps - 24.0) < 0.5


def test_gif_with_centisecond_delays_is_constant_rate(tmp_path, square):
    frames, masks = square
    path = write_gif(tmp_path / "clip.gif", frames, [40, 40, 50] * 4)  # 24 fps as whole centiseconds
    plan = check_clip_video(path, write_gif(tmp_path / "mask.gif", np.repeat(masks[..., None], 3, -1), [42] * 12))
    assert plan.video.num_frames == 12 and abs(plan.video.fps - 1000 / 43.3) < 0.5
    clip = load_clip_video(path, plan.mask.path)
    assert len(clip) == 12 and clip.foreground_source == "mask"


def test_frame_budget_from_a_file(tmp_path):
    frames, masks = moving_square(n=30, step=1)
    video, mask = write_video(tmp_path / "clip.mp4", frames, 30.0), write_video(tmp_path / "mask.mp4", masks, 30.0)
    plan = check_clip_video(video, mask, config=ClipConfig(max_frames=12))
    assert plan.frames.keep == tuple(range(0, 30, 3))
    assert "every 3rd frame is used (10 frames: 0, 3, ..., 27) over the whole 0.97 s at 10 fps" in plan.frames.note
    clip = load_clip_video(video, mask, plan=plan)
    assert clip.source_index.tolist() == list(range(0, 30, 3)) and clip.fps == 10.0
    batch = build_clip(frames[::3], masks[::3] / 255.0)
    assert float((clip.mask != batch.mask).float().mean()) < 0.002  # the kept frames are the right ones


def test_variable_frame_rate_is_refused(tmp_path, square):
    frames, masks = square
    path = write_vfr_mp4(tmp_path / "vfr.mp4", frames, rates=(24.0, 8.0))
    with pytest.raises(ValueError) as err:
        check_clip_video(path, write_video(tmp_path / "mask.mp4", masks))
    _one_line(err, "vfr.mp4 has a variable frame rate", "intervals from 41.7 to 1", "-vf fps=", "image batch")
    gif = write_gif(tmp_path / "vfr.gif", frames, [40] * 6 + [120] * 6)
    with pytest.raises(ValueError, match="variable frame rate"):
        load_clip_video(gif, write_gif(tmp_path / "mask.gif", np.repeat(masks[..., None], 3, -1), [40] * 12))
    mask = write_vfr_mp4(tmp_path / "mask_vfr.mp4", masks, rates=(24.0, 12.0))
    with pytest.raises(ValueError) as err:
        check_clip_video(write_video(tmp_path / "ok.mp4", frames), mask)
    _one_line(err, "mask video", "variable frame rate")


def test_millisecond_timestamps_are_constant_rate(tmp_path, square):
    frames, _ = square
    info = probe_video(write_video(tmp_path / "clip.mkv", frames, fps=60.0))  # Matroska keeps whole milliseconds
    assert info.tick_s == 0.001 and {round(i * 1000) for i in info.intervals_s} == {16, 17}  # 6 % apart
    check_constant_rate(info)


@pytest.mark.parametrize("layout", ["moov-at-end", "faststart"])
def test_truncated_file(tmp_path, layout):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (40, 48, 64, 3), dtype=np.uint8)  # noise: every frame is large
    params = ("-crf", "10") + (("-movflags", "+faststart") if layout == "faststart" else ())
    path = write_video(tmp_path / "clip.mp4", frames, pix_fmt="yuv420p", params=params)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as err:
        check_clip_video(path)
    _one_line(err, str(path), "cannot be read to its end", "truncated")


def test_rotation_metadata_is_applied(tmp_path, square):
    frames, _ = square
    rotated = write_rotated(tmp_path / "rotated.mp4", write_video(tmp_path / "clip.mp4", frames), degrees=90)
    info = probe_video(rotated)
    assert (info.width, info.height, info.num_frames) == (64, 48, 12)  # coded size: before rotation
    decoded = read_video(info, keep=[0, 11])
    assert decoded.shape == (2, 64, 48, 3)
    assert np.abs(decoded.astype(int) - np.rot90(frames[[0, 11]], 1, axes=(1, 2))).mean() < 1


def test_audio_outlasting_the_video_is_not_a_truncation(tmp_path, square):
    frames, _ = square
    video = add_audio(tmp_path / "clip.mp4", write_video(tmp_path / "silent.mp4", frames), seconds=1.2)
    info = probe_video(video)  # the container declares 1.2 s, the 12 frames end at 0.5 s
    assert info.num_frames == 12 and info.fps == 24.0 and not info.has_alpha


def test_not_a_video(tmp_path):
    junk = tmp_path / "clip.mp4"
    junk.write_bytes(b"not a video at all" * 20)
    with pytest.raises(ValueError) as err:
        check_clip_video(junk)
    _one_line(err, "cannot be read to its end")
    with pytest.raises(FileNotFoundError) as err:
        check_clip_video(tmp_path / "missing.mp4")
    _one_line(err, "missing.mp4 does not exist")
    with pytest.raises(ValueError) as err:
        check_clip_video(tmp_path)
    _one_line(err, "is a folder")
    gif = tmp_path / "broken.gif"
    gif.write_bytes(b"GIF89a" + b"\0" * 10)
    with pytest.raises(ValueError) as err:
        check_clip_video(gif)
    _one_line(err, "broken.gif")
    with pytest.raises(ValueError) as err:
        check_clip_video(add_audio(tmp_path / "tone.mp4", None, seconds=0.5))
    _one_line(err, "tone.mp4 holds no video stream")


def test_mask_video_must_match(tmp_path, square):
    frames, masks = square
    video = write_video(tmp_path / "clip.mp4", frames)
    with pytest.raises(ValueError) as err:
        check_clip_video(video, write_video(tmp_path / "short.mp4", masks[:10]))
    _one_line(err, "has 10 frames but the video has 12", "one mask per frame")
    with pytest.raises(ValueError) as err:
        check_clip_video(video, write_video(tmp_path / "small.mp4", masks[:, :24, :32]))
    _one_line(err, "mask video is 32x24 px but the video is 64x48 px")
    single = write_video(tmp_path / "one.mp4", frames[:1])
    with pytest.raises(ValueError) as err:
        check_clip_video(single)
    _one_line(err, "has 1 frame; a video needs at least 2")


def test_empty_mask_in_a_mask_video_names_the_frame(tmp_path, square):
    frames, masks = square
    masks = masks.copy()
    masks[9] = 0
    with pytest.raises(ValueError) as err:
        load_clip_video(write_video(tmp_path / "clip.mp4", frames), write_video(tmp_path / "mask.mp4", masks))
    _one_line(err, "mask of frame 9 (counted from 0) is empty")


def test_no_alpha_and_no_rembg_model(tmp_path, square, no_rembg):
    frames, masks = square
    with pytest.raises(FileNotFoundError) as err:
        check_clip_video(write_video(tmp_path / "clip.mp4", frames))
    _one_line(err, "no alpha and no masks", "--mask-video", "u2net.onnx")
    opaque = write_video(
        tmp_path / "opaque.mov", _rgba(frames, masks * 0 + 255), codec="png", pix_fmt="rgba", params=()
    )
    check_clip_video(opaque)  # an alpha format passes the probe; its opaque alpha is found on decoding
    with pytest.raises(FileNotFoundError, match="no alpha and no masks"):
        load_clip_video(opaque)
    assert not (tmp_path / "xdg" / "rembg").exists()


def test_frames_are_shrunk_on_decoding(tmp_path):
    frames, masks = moving_square(n=3, h=96, w=128, side=32, step=4)
    video, mask = write_video(tmp_path / "clip.mp4", frames), write_video(tmp_path / "mask.mp4", masks)
    from a124_core.reference import ClipConfig

    small = load_clip_video(video, mask, config=ClipConfig(max_input_side=64))
    assert small.meta["input_size"] == [48, 64]
    assert torch.equal(small.mask.sum(dim=(1, 2, 3)) > 0, torch.ones(3, dtype=torch.bool))
