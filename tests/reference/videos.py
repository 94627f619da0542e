"""Tiny video files for the clip tests, written with imageio-ffmpeg's ffmpeg (not with the library's writers)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image


def moving_square(
    n: int = 12, h: int = 48, w: int = 64, side: int = 16, step: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """A red square sliding right on white: frames uint8 [n, h, w, 3] and masks uint8 [n, h, w] (255 = object)."""
    frames = np.full((n, h, w, 3), 255, np.uint8)
    masks = np.zeros((n, h, w), np.uint8)
    top = (h - side) // 2
    for i in range(n):
        left = 4 + step * i
        frames[i, top : top + side, left : left + side] = (200, 30, 30)
        masks[i, top : top + side, left : left + side] = 255
    return frames, masks


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: float = 24.0,
    codec: str = "libx264",
    pix_fmt: str = "yuv444p",
    params: tuple[str, ...] = ("-qp", "0"),
) -> Path:
    """uint8 frames [N, H, W, 3 or 4] -> a video file (H.264 4:4:4 lossless by default; RGBA needs an alpha codec)."""
    import imageio_ffmpeg

    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    height, width, channels = frames.shape[1:]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        pix_fmt_in="rgba" if channels == 4 else "rgb24",
        fps=fps,
        codec=codec,
        pix_fmt_out=pix_fmt,
        macro_block_size=1,
        ffmpeg_log_level="error",
        output_params=list(params),
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


def write_vfr_mp4(path: Path, frames: np.ndarray, rates: tuple[float, float] = (24.0, 8.0)) -> Path:
    """A variable-frame-rate mp4: the first half of `frames` at rates[0], the rest at rates[1], joined without
    re-encoding (ffmpeg's concat demuxer with -c copy keeps each segment's timestamps)."""
    import imageio_ffmpeg

    half = len(frames) // 2
    parts = [
        write_video(path.with_name(f"{path.stem}_part{k}.mp4"), f, r)
        for k, (f, r) in enumerate(((frames[:half], rates[0]), (frames[half:], rates[1])))
    ]
    listing = path.with_name(f"{path.stem}_parts.txt")
    listing.write_text("".join(f"file '{p.name}'\n" for p in parts))
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing)]
    subprocess.run([*cmd, "-c", "copy", str(path)], check=True, capture_output=True)
    return path


def _ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", *args], check=True, capture_output=True)


def write_rotated(path: Path, video: Path, degrees: int = 90) -> Path:
    """`video` remuxed with a display rotation of `degrees` counter-clockwise (ffmpeg >= 6: -display_rotation;
    ffmpeg 4.2: the `rotate` tag, which its muxer writes as the same display matrix)."""
    import imageio_ffmpeg

    version = re.search(r"(\d+)\.", imageio_ffmpeg.get_ffmpeg_version())
    if version and int(version.group(1)) < 6:
        _ffmpeg("-i", str(video), "-metadata:s:v:0", f"rotate={degrees % 360}", "-c", "copy", str(path))
    else:
        _ffmpeg("-display_rotation", str(degrees), "-i", str(video), "-c", "copy", str(path))
    return path


def add_audio(path: Path, video: Path | None, seconds: float) -> Path:
    """`video` with a sine tone of `seconds` beside it (AAC), or the tone alone when `video` is None."""
    tone = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    if video is None:
        _ffmpeg(*tone, "-c:a", "aac", str(path))
    else:
        _ffmpeg("-i", str(video), *tone, "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(path))
    return path


def write_gif(path: Path, frames: np.ndarray, durations_ms: list[int]) -> Path:
    """An animated GIF with the given per-frame delays (Pillow)."""
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations_ms, loop=0, disposal=1)
    return path


def write_webp(path: Path, frames: np.ndarray, duration_ms: int = 42) -> Path:
    """An animated WebP (lossless, RGBA kept) with a constant delay (Pillow)."""
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0, lossless=True)
    return path
