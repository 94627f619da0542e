"""Video export: files decode (with imageio) to the requested frame count, size, fps and content."""

from __future__ import annotations

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

from a124_core.outputs.export import frames_to_uint8, read_video, tile_videos, write_video

from .conftest import smooth_video


def _decode(path):
    """(frames uint8 [N, H, W, 3], total duration in seconds) read with imageio, independent of read_video."""
    if path.suffix == ".mp4":
        reader = imageio_v2.get_reader(str(path), format="FFMPEG")
        fps = reader.get_meta_data()["fps"]
        frames = np.stack([np.asarray(f) for f in reader])
        reader.close()
        return frames, len(frames) / fps
    frames = iio.imread(path, index=..., plugin="pillow", mode="RGB")
    with Image.open(path) as im:
        total = 0
        for i in range(im.n_frames):
            im.seek(i)
            im.load()
            total += im.info["duration"]
    return frames, total / 1000.0


@pytest.mark.parametrize("fmt", ["mp4", "gif", "webp"])
@pytest.mark.parametrize("fps", [8.0, 24.0, 30.0])
def test_frame_count_size_fps(tmp_path, fmt, fps):
    video = smooth_video(11, 40, 48)
    path = write_video(video, tmp_path / f"v.{fmt}", fps=fps)
    frames, duration = _decode(path)
    assert frames.shape == (11, 40, 48, 3)
    # mp4 stores fps exactly; gif delays are centiseconds, webp milliseconds (rounded cumulatively).
    tolerance = {"mp4": 1e-3, "gif": 0.01, "webp": 0.001}[fmt]
    assert abs(duration - 11 / fps) <= tolerance
    error = np.abs(frames.astype(np.float32) / 255.0 - video.numpy()).mean()
    assert error < 0.03, f"{fmt} content differs by {error}"
    decoded, read_fps = read_video(path)
    assert decoded.shape == (11, 40, 48, 3)
    assert abs(read_fps - fps) / fps < 0.05


def test_lossless_webp_is_exact(tmp_path):
    video = smooth_video(5, 17, 23)
    path = write_video(video, tmp_path / "v.webp", fps=10, lossless=True)
    frames, _ = _decode(path)
    np.testing.assert_array_equal(frames, frames_to_uint8(video))


@pytest.mark.parametrize("fmt", ["mp4", "gif", "webp"])
def test_identical_frames_are_kept_and_order_and_colours_hold(tmp_path, fmt):
    # A still scene gives identical consecutive frames; Pillow/libwebp would merge them, we must not.
    levels = [0.2, 0.2, 0.2, 0.2, 0.6, 0.6, 0.9]
    video = torch.zeros(len(levels), 32, 32, 3)
    for k, level in enumerate(levels):
        video[k, :, :16, 0] = level  # red on the left
        video[k, :, 16:, 2] = level  # blue on the right
    frames, _ = _decode(write_video(video, tmp_path / f"still.{fmt}", fps=10))
    assert frames.shape[0] == len(levels)
    left, right = frames[:, 8:24, 2:12].mean(axis=(1, 2)) / 255, frames[:, 8:24, 20:30].mean(axis=(1, 2)) / 255
    np.testing.assert_allclose(left[:, 0], levels, atol=0.04)
    np.testing.assert_allclose(right[:, 2], levels, atol=0.04)
    assert left[:, 2].max() < 0.06 and right[:, 0].max() < 0.06


def test_odd_size_mp4_is_padded_by_edge_repeat(tmp_path):
    video = smooth_video(4, 33, 47)
    frames, _ = _decode(write_video(video, tmp_path / "odd.mp4", fps=12))
    assert frames.shape == (4, 34, 48, 3)
    inside = frames[:, :33, :47].astype(np.float32) / 255
    assert np.abs(inside - video.numpy()).mean() < 0.03
    # The padded row/column repeat the last ones (up to compression).
    assert np.abs(frames[:, 33].astype(np.float32) - frames[:, 32]).mean() < 4
    assert np.abs(frames[:, :, 47].astype(np.float32) - frames[:, :, 46]).mean() < 4


def test_mask_and_single_channel_inputs_become_grey(tmp_path):
    mask = torch.linspace(0, 1, 8).view(1, 1, 8).expand(3, 8, 8)
    frames = frames_to_uint8(mask)
    assert frames.shape == (3, 8, 8, 3)
    assert (frames[..., 0] == frames[..., 2]).all() and frames[0, 0, -1, 0] == 255 and frames[0, 0, 0, 0] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "v.avi"}, "Unknown video format"),
        ({"fps": 0}, "fps must be a positive"),
        ({"fps": float("nan")}, "fps must be a positive"),
        ({"path": "v.gif", "fps": 60}, "GIF cannot play"),
        ({"frames": torch.rand(2, 8, 8, 4)}, "must be shaped"),
        ({"frames": torch.full((2, 8, 8, 3), float("nan"))}, "NaN"),
        ({"frames": torch.rand(0, 8, 8, 3)}, "at least one"),
    ],
)
def test_bad_input_raises_before_writing(tmp_path, kwargs, message):
    args = {"frames": torch.rand(2, 8, 8, 3), "path": "v.mp4", "fps": 10.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        write_video(args["frames"], tmp_path / args["path"], fps=args["fps"])
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="Cannot create the output folder"):
        write_video(torch.rand(2, 8, 8, 3), blocker / "sub" / "v.mp4", fps=10)


def test_tile_videos_places_each_video_in_its_cell():
    videos = [torch.full((2, 4, 5, 3), float(i) / 10) for i in range(5)]
    grid = tile_videos(videos, columns=3, padding=1, pad_value=1.0)
    assert grid.shape == (2, 2 * 4 + 1, 3 * 5 + 2, 3)
    for i in range(5):
        r, c = divmod(i, 3)
        cell = grid[:, r * 5 : r * 5 + 4, c * 6 : c * 6 + 5]
        assert torch.all(cell == i / 10)
    assert torch.all(grid[:, 4, :] == 1.0) and torch.all(grid[:, :, 5] == 1.0)
    assert torch.all(grid[:, 5:, 12:] == 1.0)  # empty sixth cell
    assert tile_videos(videos[:4]).shape == (2, 8, 10, 3)  # default: ceil(sqrt(4)) = 2 columns


def test_tile_videos_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="share one shape"):
        tile_videos([torch.rand(2, 4, 4, 3), torch.rand(3, 4, 4, 3)])
    with pytest.raises(ValueError, match="at least one"):
        tile_videos([])
