"""Frame batches -> video files (mp4 / gif / animated webp), read-back and grid tiling.

Frames are float tensors shaped [N, H, W, 3] in [0, 1] (ComfyUI's IMAGE layout). Every writer keeps one
stored frame per input frame, so a file decodes with exactly the requested frame count:

- mp4: H.264 (libx264, yuv420p, CRF) through imageio-ffmpeg. yuv420p needs even sizes, so an odd height or
  width is padded by one row/column that repeats the edge pixels (never rescaled): the file is then
  (H + H % 2) x (W + W % 2).
- gif: ffmpeg's gif encoder, one palette per frame with ordered dithering (no crawling noise between
  frames). Pillow is not used because it merges identical consecutive frames (a still scene would lose
  frames). GIF delays are whole centiseconds; ffmpeg rounds frame start times, so the total length is
  right to 10 ms and single delays may differ by 10 ms. fps above 50 is refused (players slow delays
  under 20 ms down to 100 ms).
- webp: each frame encoded by Pillow as a still WebP, then muxed here into an animated WebP container
  (VP8X + ANIM + one ANMF per frame) because libwebp's animation encoder also merges identical frames.
  Delays are whole milliseconds, rounded cumulatively like the gif.

Files are written to a temporary name beside the target and renamed into place (no half-written videos).
"""

from __future__ import annotations

import io
import itertools
import math
import numbers
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..checkpoint import atomic_path

VIDEO_FORMATS = ("mp4", "gif", "webp")
MAX_GIF_FPS = 50.0


def frames_to_uint8(frames: Tensor | np.ndarray) -> np.ndarray:
    """Validate a frame batch and convert it to uint8 [N, H, W, 3].

    Accepts [N, H, W, 3] (IMAGE), [N, H, W, 1] or [N, H, W] (MASK, repeated to grey). Float values are
    clamped to [0, 1] (renders overshoot by rounding); NaN or inf is an error because it means a broken render.
    """
    array = frames.detach().to("cpu", torch.float32).numpy() if torch.is_tensor(frames) else np.asarray(frames)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise ValueError(
            f"Frames must be shaped [N, H, W, 3] (ComfyUI IMAGE) or [N, H, W] (MASK), got {tuple(array.shape)}."
        )
    if array.shape[0] < 1 or array.shape[1] < 1 or array.shape[2] < 1:
        raise ValueError(f"Frames must hold at least one non-empty frame, got shape {tuple(array.shape)}.")
    if array.dtype == np.uint8:
        out = array
    else:
        array = array.astype(np.float32)
        if not np.isfinite(array).all():
            raise ValueError("Frames contain NaN or inf values; check the render that produced them.")
        out = np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return np.ascontiguousarray(out)


def _frame_starts(count: int, fps: float, units_per_second: int) -> list[int]:
    """Integer delays whose running sum tracks k / fps exactly (cumulative rounding)."""
    starts = [round(k * units_per_second / fps) for k in range(count + 1)]
    return [max(1, b - a) for a, b in itertools.pairwise(starts)]


def _check_video_args(path: Path, fmt: str, fps: float) -> None:
    if fmt not in VIDEO_FORMATS:
        raise ValueError(f"Unknown video format '{fmt}' for {path}; use one of {', '.join(VIDEO_FORMATS)}.")
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}.")
    if fmt == "gif" and fps > MAX_GIF_FPS:
        raise ValueError(
            f"GIF cannot play {fps} fps: delays are whole centiseconds and players slow delays under 20 ms. "
            f"Use fps <= {MAX_GIF_FPS:g} or write mp4/webp."
        )


def _ffmpeg_write(frames: np.ndarray, path: str, fps: float, codec: str, pix_fmt: str, params: list[str]) -> None:
    """Stream uint8 frames [N, H, W, 3] through imageio-ffmpeg's bundled ffmpeg."""
    import imageio_ffmpeg

    height, width = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        path,
        (width, height),
        fps=float(fps),
        codec=codec,
        pix_fmt_out=pix_fmt,
        quality=None,
        macro_block_size=1,
        ffmpeg_log_level="error",
        output_params=params,
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def _write_mp4(frames: np.ndarray, path: str, fps: float, crf: int) -> None:
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:  # H.264 with yuv420p needs even sizes: repeat the last row / column
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    params = ["-crf", str(int(crf)), "-preset", "medium", "-movflags", "+faststart", "-f", "mp4"]
    _ffmpeg_write(frames, path, fps, "libx264", "yuv420p", params)


def _write_gif(frames: np.ndarray, path: str, fps: float, loop: int) -> None:
    palette = "split[a][b];[a]palettegen=stats_mode=single[p];[b][p]paletteuse=new=1:dither=bayer:bayer_scale=3"
    _ffmpeg_write(frames, path, fps, "gif", "pal8", ["-filter_complex", palette, "-loop", str(int(loop)), "-f", "gif"])


def _webp_chunk(tag: bytes, payload: bytes) -> bytes:
    """One RIFF chunk: tag, little-endian size, payload, pad byte to an even length."""
    return tag + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def _uint24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def _still_webp_bitstream(frame: np.ndarray, quality: int, lossless: bool) -> bytes:
    """Encode one frame with Pillow and return its image chunks (ALPH / VP8 / VP8L), ready for an ANMF."""
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="WEBP", quality=int(quality), lossless=lossless, method=4)
    data = buf.getvalue()
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("Pillow did not produce a WebP file; check that Pillow was built with WebP support.")
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        tag = data[pos : pos + 4]
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        payload = data[pos + 8 : pos + 8 + size]
        if tag in (b"ALPH", b"VP8 ", b"VP8L"):
            chunks.append(_webp_chunk(tag, payload))
        pos += 8 + size + (size % 2)
    if not chunks:
        raise ValueError("Pillow's WebP output holds no image chunk; cannot build an animated WebP.")
    return b"".join(chunks)


def _write_webp(frames: np.ndarray, path: str, fps: float, loop: int, quality: int, lossless: bool) -> None:
    height, width = frames.shape[1:3]
    if width > 1 << 24 or height > 1 << 24:
        raise ValueError(f"WebP frames are limited to 16384 px a side in practice, got {width}x{height}.")
    durations = _frame_starts(len(frames), fps, 1000)
    body = [
        _webp_chunk(b"VP8X", bytes([0x02]) + b"\0\0\0" + _uint24(width - 1) + _uint24(height - 1)),
        _webp_chunk(b"ANIM", struct.pack("<IH", 0xFFFFFFFF, int(loop))),
    ]
    for frame, duration in zip(frames, durations):
        # offset (0, 0), full canvas, no blending (flag bit 1), no disposal: each frame replaces the last.
        header = _uint24(0) + _uint24(0) + _uint24(width - 1) + _uint24(height - 1) + _uint24(duration)
        body.append(_webp_chunk(b"ANMF", header + bytes([0x02]) + _still_webp_bitstream(frame, quality, lossless)))
    payload = b"WEBP" + b"".join(body)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(payload)) + payload)


def write_video(
    frames: Tensor | np.ndarray,
    path: str | Path,
    fps: float = 25.0,
    *,
    format: str | None = None,
    crf: int = 18,
    quality: int = 90,
    lossless: bool = False,
    loop: int = 0,
) -> Path:
    """Write frames [N, H, W, 3] in [0, 1] as mp4 / gif / webp (format from `format` or the suffix).

    Args:
        frames: the video, ComfyUI IMAGE layout (see `frames_to_uint8` for accepted shapes).
        path: target file; its folder is created if missing.
        fps: frames per second (gif: at most 50).
        format: "mp4", "gif" or "webp"; None takes the file suffix.
        crf: H.264 constant rate factor (0 lossless-ish .. 51 worst; 18 is visually lossless).
        quality: WebP quality 0-100 (ignored when lossless).
        lossless: lossless WebP frames.
        loop: gif/webp loop count, 0 = forever.

    Returns:
        The written path.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    _check_video_args(path, fmt, fps)
    fps = float(fps)
    array = frames_to_uint8(frames)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"Cannot create the output folder {path.parent}: {err}. Choose a writable folder.") from err
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"Output folder {path.parent} is not writable; choose another output folder.")
    with atomic_path(path, suffix="." + fmt) as tmp:  # ffmpeg picks the container from the suffix
        if fmt == "mp4":
            _write_mp4(array, str(tmp), fps, crf)
        elif fmt == "gif":
            _write_gif(array, str(tmp), fps, loop)
        else:
            _write_webp(array, str(tmp), fps, loop, quality, lossless)
    return path


def read_video(path: str | Path) -> tuple[Tensor, float]:
    """Decode a video file written by `write_video` (or any mp4/gif/webp) -> (frames [N, H, W, 3] in [0, 1], fps).

    fps of gif/webp is the frame count over the summed frame delays.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Video {path} does not exist.")
    fmt = path.suffix.lstrip(".").lower()
    if fmt in ("gif", "webp"):
        with Image.open(path) as im:
            arrays, total_ms = [], 0
            for index in range(getattr(im, "n_frames", 1)):
                im.seek(index)
                im.load()  # WebP fills in the frame's duration only once it is decoded
                total_ms += im.info.get("duration", 0) or 0
                arrays.append(np.asarray(im.convert("RGB")))
        fps = 1000.0 * len(arrays) / total_ms if total_ms > 0 else 0.0
    else:
        import imageio.v2 as imageio

        reader = imageio.get_reader(str(path), format="FFMPEG")
        try:
            fps = float(reader.get_meta_data().get("fps", 0.0))
            arrays = [np.asarray(frame) for frame in reader]
        finally:
            reader.close()
    if not arrays:
        raise ValueError(f"Video {path} holds no frames.")
    return torch.from_numpy(np.stack(arrays)[..., :3].astype(np.float32) / 255.0), fps


def tile_videos(
    videos: Sequence[Tensor], columns: int | None = None, padding: int = 0, pad_value: float = 1.0
) -> Tensor:
    """Tile V videos [N, H, W, 3] into one grid video [N, rows * H + gaps, columns * W + gaps, 3].

    Row-major order (video 0 top-left); empty cells and the `padding`-pixel gaps are filled with `pad_value`.
    `columns` defaults to ceil(sqrt(V)).
    """
    if len(videos) == 0:
        raise ValueError("tile_videos needs at least one video.")
    first = videos[0]
    for i, video in enumerate(videos):
        if not torch.is_tensor(video) or video.ndim != 4 or video.shape[-1] != 3:
            raise ValueError(f"Video {i} must be a tensor [N, H, W, 3], got {getattr(video, 'shape', type(video))}.")
        if video.shape != first.shape:
            raise ValueError(
                f"All videos must share one shape to be tiled; video {i} is {tuple(video.shape)}, "
                f"video 0 is {tuple(first.shape)}. Render them at the same size and frame count."
            )
    columns = columns if columns is not None else math.ceil(math.sqrt(len(videos)))
    if columns < 1 or padding < 0:
        raise ValueError(f"columns must be >= 1 and padding >= 0, got columns={columns}, padding={padding}.")
    rows = math.ceil(len(videos) / columns)
    n, h, w, _ = first.shape
    grid = torch.full(
        (n, rows * h + (rows - 1) * padding, columns * w + (columns - 1) * padding, 3),
        float(pad_value),
        dtype=first.dtype,
        device=first.device,
    )
    for i, video in enumerate(videos):
        r, c = divmod(i, columns)
        y, x = r * (h + padding), c * (w + padding)
        grid[:, y : y + h, x : x + w] = video
    return grid
