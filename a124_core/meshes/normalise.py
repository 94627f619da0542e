"""Place a mesh in the scene bound and keep the transform that maps results back onto the user's file.

The field covers [-1, 1]^3 (SPEC 2) and every training camera sits 1.8 from the origin with a 40 deg field of
view, so the largest sphere every camera sees whole has radius 1.8 sin(20 deg) = 0.62. The mesh is centred on
its bounding-box centre (as the image pipeline centres the object's bounding box) and scaled so its bounding
sphere about that centre has radius 0.5: it then spans at most 76 % of the frame height from any training view
(0.5 / 0.66), a cube 52-65 % depending on the view, near the 60 % the image pipeline's recentring gives (border
ratio 0.2); and limbs can swing out to twice the object's radius before leaving the bound. Axes are not changed:
scene and file are both y-up with +z toward the reference camera (glTF's front).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_RADIUS = 0.5


@dataclass(frozen=True)
class MeshTransform:
    """scene = (file - centre) * scale; uniform scale and a translation, no rotation."""

    scale: float
    """Scene units per file unit."""
    centre: tuple[float, float, float]
    """File-space point that lands on the scene origin."""

    def to_scene(self, points: np.ndarray) -> np.ndarray:
        """File coordinates [..., 3] -> scene coordinates."""
        return (np.asarray(points, dtype=np.float64) - np.asarray(self.centre)) * self.scale

    def to_file(self, points: np.ndarray) -> np.ndarray:
        """Scene coordinates [..., 3] -> file coordinates (inverse of to_scene)."""
        return np.asarray(points, dtype=np.float64) / self.scale + np.asarray(self.centre)

    def offsets_to_file(self, offsets: np.ndarray) -> np.ndarray:
        """Scene displacements [..., 3] -> file displacements (morph-target deltas): no translation."""
        return np.asarray(offsets, dtype=np.float64) / self.scale

    def to_dict(self) -> dict:
        return {"scale": float(self.scale), "centre": [float(c) for c in self.centre]}

    @classmethod
    def from_dict(cls, data: dict) -> MeshTransform:
        return cls(float(data["scale"]), tuple(float(c) for c in data["centre"]))  # type: ignore[arg-type]


def fit_transform(
    vertices: np.ndarray, faces: np.ndarray | None = None, radius: float = DEFAULT_RADIUS
) -> MeshTransform:
    """The transform that centres the (face-used) vertices' bounding box and gives them bounding radius `radius`."""
    if not 0.0 < radius <= 1.0:
        raise ValueError(f"radius must lie in (0, 1] (the scene bound is [-1, 1]^3), got {radius}")
    v = np.asarray(vertices, dtype=np.float64)
    if faces is not None:
        v = v[np.unique(np.asarray(faces))]
    centre = (v.min(0) + v.max(0)) / 2
    extent = float(np.linalg.norm(v - centre, axis=1).max())
    if not extent > 0:
        raise ValueError("The mesh has no extent (all vertices coincide); there is nothing to place in the scene.")
    return MeshTransform(radius / extent, tuple(float(c) for c in centre))  # type: ignore[arg-type]


__all__ = ["DEFAULT_RADIUS", "MeshTransform", "fit_transform"]
