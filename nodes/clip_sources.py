"""ComfyUI's video inputs -> the library's reference clip entries, shared by Reference Video and Animate Mesh from
Video.

A clip comes as an IMAGE batch or as ComfyUI's VIDEO, with an optional MASK batch in ComfyUI's convention (1 =
transparent, inverted here; `mask_is_foreground` for masks that are already 1 = object). A VIDEO that is a file
(core Load Video) goes to the library's file entry, as `run --video` does: its alpha is kept (ComfyUI decodes RGB
only) and a variable frame rate or a damaged file is refused. A VIDEO in memory (a video model's output, Create
Video) and an IMAGE batch go to `build_clip` with the VIDEO's frame rate. Every check is the library's and raises one
line before any model is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comfy_api.v0_0_2 import io
from torch import Tensor

from .glue import folder_paths


def clip_inputs() -> list:
    """The optional clip inputs of Reference Video and Animate Mesh from Video: images or video, masks, their
    convention."""
    return [
        io.Image.Input(
            "images",
            optional=True,
            tooltip="The clip as an IMAGE batch (e.g. a video model's decoded frames); or wire 'video'.",
        ),
        io.Video.Input(
            "video",
            optional=True,
            tooltip="The clip as a VIDEO (Load Video: its file is read with its alpha; Create Video; a video model's "
            "VIDEO); or wire 'images'.",
        ),
        io.Mask.Input(
            "mask",
            optional=True,
            tooltip="One mask per frame as ComfyUI gives them (1 = transparent); they are inverted here. Without "
            "masks: the frames' alpha, else rembg (models/rembg/u2net.onnx).",
        ),
        io.Boolean.Input(
            "mask_is_foreground",
            default=False,
            optional=True,
            tooltip="Set when the wired masks already have 1 = object (e.g. from a segmentation node).",
        ),
    ]


@dataclass(frozen=True)
class ClipSource:
    """Where a clip's frames come from: a file the library decodes, or frames in memory."""

    file: Path | None
    """A Load Video file (decoded by the library: alpha kept, timing checked); None for frames in memory."""
    frames: Tensor | None = None
    """[N, H, W, C] in [0, 1] (ComfyUI IMAGE batch), None for a file."""
    masks: Tensor | None = None
    """[N, H, W] with 1 = object, or None (the frames' alpha or rembg then)."""
    depth: Tensor | None = None
    """[N, H, W, C] depth images (brighter = nearer), or None."""
    fps: float = 0.0
    """The frames' rate (a VIDEO's); 0 for an image batch."""

    def clip_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `build_clip` / `mesh_clip` for frames in memory, or `video=` for a file."""
        if self.file is not None:
            return {"video": self.file}
        return {"frames": self.frames, "masks": self.masks, "fps": self.fps}


def video_file(video: Any) -> Path | None:
    """The file behind a core Load Video VIDEO (`VideoFromFile` with a path), None for frames in memory."""
    from comfy_api.v0_0_2 import InputImpl

    file_class = getattr(InputImpl, "VideoFromFile", None)
    if file_class is None or not isinstance(video, file_class):
        return None
    source = video.get_stream_source()
    return Path(source) if isinstance(source, str) else None


def foreground_masks(mask: Tensor | None, mask_is_foreground: bool) -> Tensor | None:
    """ComfyUI MASK [N, H, W] (or one [H, W]) -> 1 = object. An all-zero batch without `mask_is_foreground` is Load
    Image's mask of frames without alpha, i.e. no mask."""
    if mask is None:
        return None
    masks = mask[None] if mask.dim() == 2 else mask
    if mask_is_foreground:
        return masks
    return None if not bool(masks.any()) else 1.0 - masks


def check_constant_rate(path: Path) -> None:
    """The library's timing check of a video file (one line for a variable frame rate or a damaged file)."""
    from a124_core.reference.clip import ClipConfig
    from a124_core.reference.video_file import check_constant_rate as check
    from a124_core.reference.video_file import probe_video

    check(probe_video(path, "video"), ClipConfig().fps_tolerance, "video")


def clip_source(
    images: Tensor | None, video: Any, mask: Tensor | None, depth: Tensor | None, mask_is_foreground: bool
) -> ClipSource:
    """Which clip the inputs describe; one line when they describe none or two."""
    if (images is None) == (video is None):
        raise ValueError(
            "Wire either an IMAGE batch into 'images' (a video model's decoded frames) or a VIDEO into 'video' (Load "
            f"Video, Create Video), not {'both' if images is not None else 'neither'}."
        )
    masks = foreground_masks(mask, mask_is_foreground)
    if images is not None:
        return ClipSource(None, images, masks, depth)
    path = video_file(video)
    if path is not None and masks is None and depth is None:
        return ClipSource(path)
    if path is not None:
        check_constant_rate(path)
    components = video.get_components()
    return ClipSource(None, components.images, masks, depth, float(components.frame_rate))


def rembg_dirs() -> list[str]:
    """ComfyUI's models/rembg folders (where the library looks for u2net.onnx)."""
    fp = folder_paths()
    return fp.get_folder_paths("rembg") if "rembg" in fp.folder_names_and_paths else []


def clip_note(clip: Any) -> str:
    """One line: what the clip holds, and what was kept when the input exceeded the frame budget."""
    meta = clip.meta
    rate = f" at {clip.fps:.3g} fps" if clip.fps > 0 else ""
    depth = "" if clip.depth is None else f", depth from {clip.depth_source}"
    head = f"{len(clip)} frames{rate}, foreground from {clip.foreground_source}{depth}."
    return head + (f" {meta['frames_note']}" if meta.get("frames_note") else "")
