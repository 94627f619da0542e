"""A user's mesh as loaded: geometry, surface colour, and what writing the animation back onto it needs.

Coordinates are the file's own (glTF node transforms applied), y-up with +z toward the viewer as glTF defines
(OBJ, PLY and STL files carry no convention; they are read as y-up too, which is what Blender's exporters
write by default). Colours are stored in display (sRGB) space so the field learns what a viewer shows:
glTF's linear base-colour factors and COLOR_0 are converted on load, textures are sRGB already.

A surface point on face f with barycentrics b has the colour
    base_color[material[f]] * texture[material[f]](uv(b)) * vertex_color(b),
each factor 1 where absent (glTF's rule, multiplied in display space: exact under a pure power-law gamma).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SOURCE_FORMATS = ("glb", "gltf", "obj", "ply", "stl", "tensors")


@dataclass
class Material:
    """Colour of the faces that use it."""

    base_color: np.ndarray
    """[3] float32 display-space multiplier (glTF baseColorFactor, OBJ Kd without a texture)."""
    texture: np.ndarray | None = None
    """[H, W, 3] uint8 sRGB base-colour texture, sampled bilinearly with repeat wrapping."""
    name: str = ""
    """The file's material name (for messages)."""


@dataclass
class PrimitiveSegment:
    """One glTF primitive of the write-back file: asset vertices [start, start + count) in accessor order."""

    mesh: int
    """Index of the glTF mesh."""
    primitive: int
    """Index of the primitive in that mesh."""
    start: int
    """First asset vertex of the primitive."""
    count: int
    """Vertices of the primitive (its POSITION accessor's count)."""
    face_start: int
    """First asset face of the primitive."""
    face_count: int
    """Triangles of the primitive."""
    matrix: np.ndarray
    """[4, 4] float64 world-from-local transform of the node that draws it (morph deltas are local)."""


@dataclass
class MeshSource:
    """Where the mesh came from; the write-back starts from the original file where there is one."""

    format: str
    """One of SOURCE_FORMATS."""
    path: Path | None = None
    """The file (None for tensors)."""
    data: bytes | None = None
    """GLB bytes the animation is attached to: a GLB file's own bytes, or a .gltf packed with its files."""


@dataclass
class MeshAsset:
    """A triangle mesh with its surface colour and its map back to the source file."""

    vertices: np.ndarray
    """[V, 3] float32 world coordinates of the file, y-up."""
    faces: np.ndarray
    """[F, 3] int64 vertex indices."""
    face_materials: np.ndarray
    """[F] int64 index into `materials`."""
    materials: list[Material]
    """At least one material."""
    segments: list[PrimitiveSegment]
    """Consecutive vertex/face ranges, one per primitive of the write-back file, covering all vertices."""
    source: MeshSource
    """The file (or tensors) it was read from."""
    uv: np.ndarray | None = None
    """[V, 2] float32 texture coordinates with v up (OBJ convention; trimesh flips glTF's v on load)."""
    vertex_colors: np.ndarray | None = None
    """[V, 3] float32 display-space multipliers in [0, 1]."""
    notes: list[str] = field(default_factory=list)
    """One line per thing done to the input that the user should know (shown as warnings)."""

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def name(self) -> str:
        return self.source.path.name if self.source.path is not None else "the MESH input"


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float32)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, dtype=np.float32), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055).astype(np.float32)


__all__ = [
    "SOURCE_FORMATS",
    "Material",
    "MeshAsset",
    "MeshSource",
    "PrimitiveSegment",
    "linear_to_srgb",
    "srgb_to_linear",
]
