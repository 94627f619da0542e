"""The videos the two video workflows load from ComfyUI's input folder (scripts/build_workflows.py: OBJECT_VIDEO,
MESH_VIDEO), as 16:9-like WebM VP9 with alpha so the clip needs no rembg model: the panda sliding and bobbing,
and the limb mesh (input/3d/model.glb) filmed from the front raising its arms on a wider canvas (what an
image-to-video model would return from Mesh Front View's image). Shared by the executor and the host tests."""

from __future__ import annotations

import sys
import warnings
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from tests.paths import EXAMPLES, REPO
from tests.reference.videos import write_video

sys.path.insert(0, str(REPO / "scripts"))
from build_workflows import MESH_VIDEO, OBJECT_VIDEO  # noqa: E402

FRAMES = 8


def _write_rgba_webm(path: Path, rgba: np.ndarray, fps: float = 8.0) -> Path:
    return write_video(path, rgba, fps, codec="libvpx-vp9", pix_fmt="yuva420p", params=("-lossless", "1"))


def object_frames(n: int = FRAMES, size: tuple[int, int] = (128, 72)) -> np.ndarray:
    """uint8 RGBA [n, 72, 128, 4]: the panda (48 px) moving right and bobbing on a transparent 16:9 canvas (a video
    model's frame shape; the frontend's video preview of it fits the room the layout gives Load Video)."""
    width, height = size
    panda = Image.open(EXAMPLES / "panda-dance" / "rgba.png").convert("RGBA").resize((48, 48))
    frames = []
    for i in range(n):
        canvas = Image.new("RGBA", (width, height), (255, 255, 255, 0))
        canvas.paste(panda, (24 + 6 * i, 12 - 3 * (i % 3)), panda)
        frames.append(np.asarray(canvas))
    return np.stack(frames)


@cache
def mesh_frames(n: int = FRAMES) -> np.ndarray:
    """uint8 RGBA [n, 56, 96, 4]: the test mesh raising its arms, filmed from the front (tests/oracle/clip_mesh)."""
    from a124_core.meshes.normalise import DEFAULT_RADIUS, fit_transform
    from tests.meshes.builder import build_test_mesh
    from tests.oracle.clip_mesh import MeshTruth, film

    mesh = build_test_mesh()
    with warnings.catch_warnings():  # the film's mesh carries vertex colours; the MESH it is built from has none
        warnings.simplefilter("ignore", UserWarning)
        truth = MeshTruth(mesh, fit_transform(mesh.vertices, mesh.faces, DEFAULT_RADIUS).to_scene)
    frames, masks = film(truth, n)
    rgba = np.concatenate([frames.numpy(), masks.numpy()[..., None]], axis=-1)
    return (rgba * 255).round().astype(np.uint8)


def write_input_videos(folder: Path) -> tuple[Path, Path]:
    """Both workflow videos into `folder` (ComfyUI's input folder)."""
    objects = _write_rgba_webm(folder / OBJECT_VIDEO, object_frames())
    return objects, _write_rgba_webm(folder / MESH_VIDEO, mesh_frames())
