"""Reading a user's video file for a reference clip: probe, frame-rate check and decoding, with one-line errors.

Containers ffmpeg reads (mp4, mov, mkv, webm, avi, apng, ...) go through imageio-ffmpeg's `read_frames`, which runs
its bundled (or configured) ffmpeg: this module starts no process itself (the Comfy registry refuses node packs that
do). Animated GIF and WebP go through Pillow (per-frame delays, and ffmpeg builds before 7 cannot decode animated
WebP). Every run uses passthrough timing (`-fps_mode`, `-vsync` before ffmpeg 5.1: no frame duplicated or dropped)
and `-xerror` (ffmpeg stops at the first demuxing or decoding error).

- Probe: one decoding pass whose output is 7x1 px per frame: ffmpeg's `geq` filter writes the frame's presentation
  time T (nanoseconds, one byte per pixel), which gives the frame count and every frame interval. The header that
  read_frames yields first gives the coded size, the pixel format (alpha) and the container's declared duration.
  VP8/VP9 alpha lives in side data only libvpx decodes, so those streams are probed again with libvpx.
- Damage: read_frames reports neither ffmpeg's exit status nor its log after the header, so a file is refused as
  damaged when ffmpeg cannot open it (its last log line is quoted), when a frame is cut short, or when the frames
  stop before the duration the container declares, by more than two frame intervals + 0.1 s (+ 1 s when the file
  holds audio, which may outlast the video): a truncated mp4 or webm keeps the index or header that declares the
  whole length, and damage inside the file ends the frames early through `-xerror`.
- Variable frame rate: a clip's frame i is time i / (N - 1), which is only the real time when frames are evenly
  spaced. Intervals that differ from their median by more than `tolerance` of it plus one timestamp tick (1 ms when
  every time is a whole millisecond, as in Matroska/WebM; 10 ms for GIF delays, 1 ms for WebP) mark a
  variable-frame-rate file, refused with the re-encoding command that fixes it.
- Decoding: raw frames of the size ffmpeg's header reports (rotation metadata applied, shrunk to at most `max_side`
  on the longer side); the decoder must give as many frames as the probe counted. Alpha VP8/VP9 streams are decoded
  with libvpx.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator, Sequence
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
#: The probe's output: pixel X of each 7x1 frame is byte X of T in nanoseconds plus 2^40 (times down to -18 min).
_TIME_BYTES, _TIME_OFFSET_NS = 7, 2**40
_TIME_FILTER = f"scale={_TIME_BYTES}:1:flags=neighbor,geq=lum='mod(floor((T*1e9+{_TIME_OFFSET_NS}.5)/pow(256,X)),256)'"
_BYTE_WEIGHTS = 256 ** np.arange(_TIME_BYTES, dtype=np.int64)


@dataclass(frozen=True)
class VideoInfo:
    """What the probe learnt about a video file, before its frames are decoded at full size."""

    path: Path
    num_frames: int
    """Frames in the file."""
    fps: float
    """Frames per second: (N - 1) over the span of the presentation times as the nearest fraction with a
    denominator up to 1001 (exact for whole and NTSC rates; 0 for a one-frame file)."""
    width: int
    """Coded width (before any rotation metadata is applied)."""
    height: int
    """Coded height."""
    has_alpha: bool
    """The pixels carry an alpha channel (it may still be fully opaque)."""
    intervals_s: tuple[float, ...]
    """Time between consecutive frames, in presentation order, in seconds."""
    tick_s: float = 0.0
    """Resolution of the timestamps: 1 ms when every time is a whole millisecond (Matroska/WebM), 10 ms for GIF
    delays, 1 ms for WebP, else 0 (finer than the check needs)."""
    decoder: str | None = None
    """ffmpeg decoder forced for alpha (libvpx for VP8/VP9 alpha), None for the default one."""


@functools.lru_cache(maxsize=4)
def _passthrough_option(exe: str) -> tuple[str, str]:
    """`-fps_mode passthrough` (ffmpeg >= 5.1) or the older `-vsync passthrough` (removed in ffmpeg 7)."""
    import imageio_ffmpeg

    match = re.search(r"(\d+)\.(\d+)", imageio_ffmpeg.get_ffmpeg_version())  # "4.2.2-static", "n9.0.2-17-g..."
    major_minor = (int(match.group(1)), int(match.group(2))) if match else (99, 0)  # a git build: the newest
    return ("-fps_mode", "passthrough") if major_minor >= (5, 1) else ("-vsync", "passthrough")


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


def _last_line(text: str) -> str:
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", line.strip()) for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error message"


class _NoSizeWarning(logging.Filter):
    """read_frames warns whenever its output size differs from the coded one, as both of ours do by design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "different from the source frame size" not in record.getMessage()


def _open(path: Path, what: str, pix_fmt: str, bits: int, vf: str, decoder: str | None) -> tuple[dict, Iterator]:
    """Start imageio-ffmpeg's reader on the first video stream: (ffmpeg's header as read_frames parses it, the
    frames as bytes). A file ffmpeg cannot open raises one line."""
    import imageio_ffmpeg

    frames = imageio_ffmpeg.read_frames(
        str(path),
        pix_fmt=pix_fmt,
        bits_per_pixel=bits,
        input_params=["-nostdin", "-nostats", "-xerror"] + (["-c:v", decoder] if decoder else []),
        output_params=["-map", "0:v:0", *_passthrough_option(imageio_ffmpeg.get_ffmpeg_exe()), "-vf", vf],
    )
    log, quiet = logging.getLogger("imageio_ffmpeg"), _NoSizeWarning()
    log.addFilter(quiet)
    try:
        return next(frames), _checked(frames, path, what)
    except (OSError, RuntimeError, StopIteration, LookupError, ValueError, AttributeError) as err:
        text = str(err)  # ffmpeg's log when the header never came (the file cannot be opened)
        if re.search(r"Stream #\d+:\d+", text) and not re.search(r"Stream #\d+:\d+.*: Video:", text):
            raise ValueError(
                f"The {what} {path} holds no video stream (only audio or data); pass a video file."
            ) from None
        raise _damaged(path, what, _last_line(text)) from None
    finally:
        log.removeFilter(quiet)


def _checked(frames: Iterator[bytes], path: Path, what: str) -> Iterator[bytes]:
    try:
        yield from frames
    except RuntimeError as err:  # read_frames' "Could not read frame": the output ended inside a frame
        raise _damaged(path, what, _last_line(str(err))) from None


def _frame_times(path: Path, what: str, decoder: str | None = None) -> tuple[dict, np.ndarray, str | None]:
    """ffmpeg's header, every frame's presentation time in ns (int64 [N], increasing) and the decoder used."""
    meta, frames = _open(path, what, "gray", 8, _TIME_FILTER, decoder)
    if decoder is None and meta["codec"] in ("vp8", "vp9") and not _ALPHA_FORMAT.search(meta["pix_fmt"]):
        frames.close()  # VP8/VP9 alpha: only libvpx decodes it (and reports yuva420p)
        return _frame_times(path, what, "libvpx-vp9" if meta["codec"] == "vp9" else "libvpx")
    data = np.frombuffer(b"".join(frames), np.uint8).reshape(-1, _TIME_BYTES).astype(np.int64)
    return meta, np.sort(data @ _BYTE_WEIGHTS - _TIME_OFFSET_NS), decoder


def probe_video(path: str | Path, what: str = "video") -> VideoInfo:
    """Frame count, frame times, size and alpha of a video file, from one decoding pass at 7x1 px."""
    path = check_video_path(path, what)
    if path.suffix.lower() in PIL_SUFFIXES:
        return _probe_animated_image(path, what)
    meta, times, decoder = _frame_times(path, what)
    if not len(times):
        raise _damaged(path, what, "no video frames were found")
    intervals, span = np.diff(times), int(times[-1] - times[0])
    step = int(np.median(intervals)) if len(intervals) else 0
    declared = float(meta["duration"])  # 0 when the container declares none
    slack = 2 * step / 1e9 + 0.1 + (1.0 if "audio_codec" in meta else 0.0)  # audio may outlast the video
    if declared > 0 and (span + step) / 1e9 < declared - slack:
        raise _damaged(
            path, what, f"{len(times)} frames end at {(span + step) / 1e9:.2f} s of the {declared:.2f} s declared"
        )
    alpha = _ALPHA_FORMAT.search(meta["pix_fmt"]) is not None
    fps = Fraction((len(times) - 1) * 10**9, span).limit_denominator(1001) if span > 0 else Fraction(0)
    return VideoInfo(
        path=path,
        num_frames=len(times),
        fps=float(fps),
        width=int(meta["source_size"][0]),
        height=int(meta["source_size"][1]),
        has_alpha=alpha,
        intervals_s=tuple((intervals / 1e9).tolist()),
        tick_s=0.0 if np.any(times % 10**6) else 0.001,
        decoder=decoder if alpha else None,
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


def read_video(
    info: VideoInfo, keep: Sequence[int] | None = None, max_side: int = 1024, alpha: bool | None = None, what="video"
) -> np.ndarray:
    """Decode the frames `keep` (all when None) as uint8 [K, H, W, 3 or 4], at most `max_side` px on the longer side.

    `alpha` None keeps the alpha channel when the file has one; True/False forces RGBA/RGB.
    """
    keep = list(range(info.num_frames)) if keep is None else list(keep)
    with_alpha = info.has_alpha if alpha is None else alpha
    if info.path.suffix.lower() in PIL_SUFFIXES:
        return np.stack(_read_animated_image(info, keep, max_side, with_alpha, what))
    box = f"scale=w='min(iw,{max_side})':h='min(ih,{max_side})':force_original_aspect_ratio=decrease"
    channels = 4 if with_alpha else 3
    decoder = info.decoder if with_alpha else None
    meta, frames = _open(info.path, what, "rgba" if with_alpha else "rgb24", 8 * channels, box, decoder)
    width, height = meta["size"]  # after rotation and shrinking
    wanted, kept, count = set(keep), {}, 0
    for count, frame in enumerate(frames, 1):
        if count - 1 in wanted:
            kept[count - 1] = np.frombuffer(frame, np.uint8).reshape(height, width, channels)
    if count != info.num_frames:
        raise _damaged(info.path, what, f"{count} frames decoded of the {info.num_frames} the probe found")
    return np.stack([kept[i] for i in keep])


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
