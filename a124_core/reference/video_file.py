"""Reading a user's video file for a reference clip: probe, frame-rate check and decoding, with one-line errors.

Containers ffmpeg reads (mp4, mov, mkv, webm, avi, apng, ...) go through imageio-ffmpeg's bundled ffmpeg, run
directly so that its exit status and error log decide whether the file is whole; animated GIF and WebP go through
Pillow (per-frame delays, and ffmpeg builds before 7 cannot decode animated WebP).

- Probe: the video packets' presentation times are listed without decoding (`-c copy -f framecrc`), which gives the
  frame count and every frame interval in the container's own time base; the stream header says whether the
  pixels carry alpha. A file whose demuxer logs any error while listing (a truncated mp4 says "partial file") is
  refused as damaged.
- Variable frame rate: a clip's frame i is time i / (N - 1), which is only the real time when frames are evenly
  spaced. Intervals that differ from their median by more than `tolerance` of it plus one time-base tick (10 ms
  for GIF delays, 1 ms for WebP) mark a variable-frame-rate file, refused with the re-encoding command that fixes it.
- Decoding: frames come out as self-describing PAM images (rotation metadata is applied by ffmpeg, so the size is
  read per frame), shrunk to at most `max_side` on the longer side, in passthrough timing (no frame is duplicated
  or dropped); VP8/VP9 alpha lives in side data only libvpx decodes, so those streams are decoded with libvpx.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

#: Suffixes read with Pillow (animated images with per-frame delays).
PIL_SUFFIXES = (".gif", ".webp")
#: Pixel formats (ffmpeg names) that carry an alpha channel.
_ALPHA_FORMAT = re.compile(r"\b(yuva\w*|rgba\w*|bgra\w*|argb|abgr|gbrap\w*|ya8|ya16\w*|pal8|rgb32|bgr32)\b")
_TICK_S = {".gif": 0.01, ".webp": 0.001}


@dataclass(frozen=True)
class VideoInfo:
    """What the probe learnt about a video file, before any frame is decoded."""

    path: Path
    num_frames: int
    """Frames (video packets) in the file."""
    fps: float
    """Frames per second: (N - 1) over the span of the presentation times (0 for a one-frame file)."""
    width: int
    """Coded width (before any rotation metadata is applied)."""
    height: int
    """Coded height."""
    has_alpha: bool
    """The pixels carry an alpha channel (it may still be fully opaque)."""
    intervals_s: tuple[float, ...]
    """Time between consecutive frames, in presentation order, in seconds."""
    tick_s: float = 0.0
    """Resolution of the timestamps: the container's time base, 10 ms for GIF delays, 1 ms for WebP."""
    decoder: str | None = None
    """ffmpeg decoder forced for alpha (libvpx for VP8/VP9 alpha), None for the default one."""


def ffmpeg_exe() -> str:
    """imageio-ffmpeg's bundled (or configured) ffmpeg executable."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=4)
def _passthrough_option(exe: str) -> list[str]:
    """`-fps_mode passthrough` (ffmpeg >= 5.1) or the older `-vsync passthrough` (removed in ffmpeg 7)."""
    out = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"version \D*(\d+)\.(\d+)", out)
    major_minor = (int(match.group(1)), int(match.group(2))) if match else (99, 0)
    return ["-fps_mode", "passthrough"] if major_minor >= (5, 1) else ["-vsync", "passthrough"]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, check=False, stdin=subprocess.DEVNULL)


def _last_line(text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", line.strip()) for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error message"


def check_video_path(path: str | Path, what: str = "video") -> Path:
    """The path as a Path, or a one-line error when it is missing or a folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"The {what} {path} is a folder; pass a video file (mp4, mov, webm, mkv, gif, webp).")
    if not path.is_file():
        raise FileNotFoundError(f"The {what} {path} does not exist; check the path.")
    return path


def _damaged(path: Path, what: str, detail: str) -> ValueError:
    return ValueError(
        f"The {what} {path} cannot be read to its end ({detail}): the file is truncated, damaged or not a video; "
        "save or export it again."
    )


def probe_video(path: str | Path, what: str = "video") -> VideoInfo:
    """Frame count, frame rate, size and alpha of a video file, without decoding its frames (milliseconds)."""
    path = check_video_path(path, what)
    if path.suffix.lower() in PIL_SUFFIXES:
        return _probe_animated_image(path, what)
    exe = ffmpeg_exe()
    header = _run([exe, "-hide_banner", "-nostdin", "-i", str(path)]).stderr.decode("utf-8", "replace")
    video = re.search(r"Stream #\d+:\d+.*?: Video: (\w+).*", header)
    if video is None:
        if re.search(r"Stream #\d+:\d+", header):
            raise ValueError(f"The {what} {path} holds no video stream (only audio or data); pass a video file.")
        raise _damaged(path, what, _last_line(header))
    codec, line = video.group(1), video.group(0)
    block = header[video.end() :].split("Stream #")[0]
    vpx_alpha = codec in ("vp8", "vp9") and re.search(r"alpha_mode\s*:\s*1", block) is not None
    listing = _run(
        [exe, "-v", "error", "-nostdin", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"]
    )
    log = listing.stderr.decode("utf-8", "replace").strip()
    if listing.returncode != 0 or log:
        raise _damaged(path, what, _last_line(log) if log else f"ffmpeg exit status {listing.returncode}")
    text = listing.stdout.decode("utf-8", "replace")
    base = re.search(r"#tb 0: (\d+)/(\d+)", text)
    size = re.search(r"#dimensions 0: (\d+)x(\d+)", text)
    pts = sorted(int(row.split(",")[2]) for row in text.splitlines() if row and not row.startswith("#"))
    if base is None or size is None or not pts:
        raise _damaged(path, what, "no video frames were found")
    tick = Fraction(int(base.group(1)), int(base.group(2)))
    intervals = tuple(float((b - a) * tick) for a, b in zip(pts, pts[1:]))
    span = (pts[-1] - pts[0]) * tick
    return VideoInfo(
        path=path,
        num_frames=len(pts),
        fps=float((len(pts) - 1) / span) if len(pts) > 1 and span > 0 else 0.0,  # exact for a whole rate
        width=int(size.group(1)),
        height=int(size.group(2)),
        has_alpha=vpx_alpha or _ALPHA_FORMAT.search(line) is not None,
        intervals_s=intervals,
        tick_s=float(tick),
        decoder=("libvpx-vp9" if codec == "vp9" else "libvpx") if vpx_alpha else None,
    )


def _probe_animated_image(path: Path, what: str) -> VideoInfo:
    try:
        with Image.open(path) as im:
            count = getattr(im, "n_frames", 1)
            durations, has_alpha = [], False
            for index in range(count):
                im.seek(index)
                im.load()  # WebP fills in the duration only once the frame is decoded
                durations.append((im.info.get("duration", 0) or 0) / 1000.0)
                has_alpha = has_alpha or im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            width, height = im.size
    except UnidentifiedImageError:
        raise ValueError(
            f"The {what} {path} is not an image or video Pillow can read; pass an mp4, gif or webp."
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise _damaged(path, what, str(err)) from None
    total = sum(durations[:-1])
    return VideoInfo(
        path=path,
        num_frames=count,
        fps=(count - 1) / total if count > 1 and total > 0 else 0.0,
        width=width,
        height=height,
        has_alpha=has_alpha,
        intervals_s=tuple(durations[:-1]),
        tick_s=_TICK_S[path.suffix.lower()],
    )


def check_constant_rate(info: VideoInfo, tolerance: float = 0.05, what: str = "video") -> None:
    """Refuse a variable-frame-rate file: frame i of a clip is time i / (N - 1), true only for even spacing."""
    if len(info.intervals_s) < 2:
        return
    intervals = np.asarray(info.intervals_s)
    median = float(np.median(intervals))
    if median > 0 and float(np.max(np.abs(intervals - median))) <= tolerance * median + info.tick_s + 1e-9:
        return
    fps = max(1, round(info.fps))  # the mean rate keeps the clip's length and about its frame count
    name = info.path.name
    raise ValueError(
        f"The {what} {info.path} has a variable frame rate (frame intervals from {1000 * intervals.min():.1f} to "
        f"{1000 * intervals.max():.1f} ms), so frame times would be wrong; re-encode it at a constant rate, e.g. "
        f"`ffmpeg -i {name} -vf fps={fps} -c:v libx264 -crf 12 {info.path.stem}_cfr.mp4`, or pass its frames as an "
        "image batch."
    )


def _pam_frames(stream: bytes, path: Path, what: str) -> list[np.ndarray]:
    """Split ffmpeg's image2pipe PAM output into uint8 arrays [H, W, C]."""
    frames, pos = [], 0
    while pos < len(stream):
        end = stream.find(b"ENDHDR\n", pos)
        if not stream.startswith(b"P7\n", pos) or end < 0:
            raise _damaged(path, what, f"unexpected decoder output at byte {pos}")
        fields = dict(line.split(b" ", 1) for line in stream[pos + 3 : end].splitlines() if b" " in line)
        w, h, c = int(fields[b"WIDTH"]), int(fields[b"HEIGHT"]), int(fields[b"DEPTH"])
        start, pos = end + 7, end + 7 + w * h * c
        if pos > len(stream):
            raise _damaged(path, what, "a frame was cut short")
        frames.append(np.frombuffer(stream, np.uint8, w * h * c, start).reshape(h, w, c))
    return frames


def read_video(
    info: VideoInfo, keep: Sequence[int] | None = None, max_side: int = 1024, alpha: bool | None = None, what="video"
) -> np.ndarray:
    """Decode the frames `keep` (all when None) as uint8 [K, H, W, 3 or 4], at most `max_side` px on the longer side.

    `alpha` None keeps the alpha channel when the file has one; True/False forces RGBA/RGB.
    """
    keep = list(range(info.num_frames)) if keep is None else list(keep)
    with_alpha = info.has_alpha if alpha is None else alpha
    if info.path.suffix.lower() in PIL_SUFFIXES:
        frames = _read_animated_image(info, keep, max_side, with_alpha, what)
    else:
        exe = ffmpeg_exe()
        box = f"scale=w='min(iw,{max_side})':h='min(ih,{max_side})':force_original_aspect_ratio=decrease"
        cmd = [exe, "-v", "error", "-nostdin"] + (["-c:v", info.decoder] if info.decoder and with_alpha else [])
        cmd += ["-i", str(info.path), "-map", "0:v:0", *_passthrough_option(exe), "-vf", box]
        cmd += ["-pix_fmt", "rgba" if with_alpha else "rgb24", "-c:v", "pam", "-f", "image2pipe", "-"]
        done = _run(cmd)
        if done.returncode != 0:
            raise _damaged(info.path, what, _last_line(done.stderr))
        decoded = _pam_frames(done.stdout, info.path, what)
        if len(decoded) != info.num_frames:
            raise _damaged(info.path, what, f"{len(decoded)} frames decoded of the {info.num_frames} listed")
        frames = [decoded[i] for i in keep]
    return np.stack(frames)


def _read_animated_image(
    info: VideoInfo, keep: list[int], max_side: int, with_alpha: bool, what: str
) -> list[np.ndarray]:
    frames = []
    try:
        with Image.open(info.path) as im:
            for index in keep:
                im.seek(index)
                frame = im.convert("RGBA").convert("RGBa") if with_alpha else im.convert("RGB")  # premultiplied
                scale = min(1.0, max_side / max(frame.size))
                if scale < 1.0:
                    size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
                    frame = frame.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
                frame = frame.convert("RGBA") if with_alpha else frame
                frames.append(np.asarray(frame).copy())
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise _damaged(info.path, what, str(err)) from None
    return frames
