"""Animate a mesh from a video of it (issue 26): the user's mesh + a clip of its front view in motion -> the same mesh
with one morph target per frame.

1. The mesh's front render from the reference camera (`front_view`) is what the user gives an image-to-video model
   (the Animate Mesh node's IMAGE output); the model's clip starts from that picture.
2. The clip becomes a `ReferenceClip` whose one crop puts frame 0's object box onto the front render's object box
   (`mesh_clip`): video models keep their input's framing up to a scale and a shift (a 16:9 canvas, a resize), and
   the stage's reference camera must see each frame where the mesh is. No recentring around the motion.
3. The canonical field is fitted to the mesh (`scene_from_mesh`) and `animate.animation_stage` runs with the clip
   as its reference (`training/video_clip.py`: per-frame reconstruction, Zero123 conditioned on each view's frame,
   ARAP on the mesh's vertices, the deformation field); the text-to-video prior is optional and off by default.
4. `animate.write_animation` moves the user's vertices with the trained field and writes them back onto the GLB.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..cameras import CameraConfig
from ..reference.clip import ClipConfig, ReferenceClip
from ..reference.recentre import object_bbox
from .animate import MeshReference, mesh_reference
from .asset import MeshAsset
from .normalise import DEFAULT_RADIUS, fit_transform
from .surface import MeshSurface

#: Side of the front render handed to video models (and whose object box the clip's frame 0 is cropped onto).
FRONT_VIEW_SIZE = 512


def front_view(
    asset: MeshAsset, size: int = FRONT_VIEW_SIZE, camera: CameraConfig = CameraConfig(), radius=DEFAULT_RADIUS
) -> MeshReference:
    """The mesh's exact front render from the reference camera (on white) with its alpha: the image a video model
    animates. Needs no fit: the file -> scene transform alone places the mesh (as `scene_from_mesh` does)."""
    surface = MeshSurface.from_asset(asset, fit_transform(asset.vertices, asset.faces, radius))
    return mesh_reference(surface, size, camera)


def object_box(reference: MeshReference) -> tuple[float, float, float, float]:
    """(y0, y1, x0, x1) of the render's object as fractions of its side."""
    size = reference.alpha.shape[-1]
    y0, y1, x0, x1 = object_bbox(reference.alpha[0], 0.5)
    return y0 / size, y1 / size, x0 / size, x1 / size


def mesh_clip(
    asset: MeshAsset,
    *,
    frames: Any = None,
    masks: Any = None,
    video: str | Path | None = None,
    mask_video: str | Path | None = None,
    config: ClipConfig | None = None,
    camera: CameraConfig = CameraConfig(),
    rembg_dirs: Sequence[str | Path] = (),
    plan: Any = None,
) -> ReferenceClip:
    """The clip of the mesh in motion, from an image batch (`frames` [N, H, W, C] + optional `masks` [N, H, W]) or a
    video file (+ optional mask video), cropped so that frame 0 lands on the mesh's front render."""
    from ..reference.clip_build import build_clip, load_clip_video

    if (frames is None) == (video is None):
        raise ValueError("Give the clip of the mesh either as frames (an IMAGE batch) or as a video file, not both.")
    box = object_box(front_view(asset, FRONT_VIEW_SIZE, camera))
    cfg = config or ClipConfig()
    if video is not None:
        return load_clip_video(video, mask_video, rembg_dirs=rembg_dirs, config=cfg, plan=plan, first_box=box)
    return build_clip(frames, masks, rembg_dirs=rembg_dirs, config=cfg, first_box=box)


__all__ = ["FRONT_VIEW_SIZE", "front_view", "mesh_clip", "object_box"]
