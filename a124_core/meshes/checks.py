"""Input checks of a mesh before anything is fitted: clear refusals, and notes on what is done with odd input.

Refused (ValueError): no vertices or faces, non-finite coordinates, face indices out of range, all vertices
at one point, more than `max_faces` triangles. Accepted with a note: open surfaces (edges used by one triangle)
and non-manifold edges (used by three or more): inside/outside comes from a voxel flood fill that closes holes
up to a few voxels wide (`inside.py`); wider openings leave a one-voxel shell, which is right for sheets and
cups and makes a body with a missing patch hollow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.topology import edge_counts, weld_vertices


@dataclass(frozen=True)
class MeshCheckConfig:
    """Limits on the input mesh."""

    max_faces: int = 500_000
    """Refuse meshes with more triangles. The animation keeps every vertex of the user's mesh, stored once per
    frame (64 frames x 12 bytes per vertex: 500 k faces ~ 250 k vertices ~ 190 MB); decimating silently would
    hand back a different mesh than the user gave, so the user decimates in their own tool instead."""


def check_mesh(vertices: np.ndarray, faces: np.ndarray, name: str, config: MeshCheckConfig) -> list[str]:
    """Raise ValueError for unusable meshes; return notes on open or non-manifold surfaces."""
    v, f = np.asarray(vertices), np.asarray(faces)
    if len(f) == 0:
        raise ValueError(
            f"{name} has {len(v)} vertices but no faces (a point cloud); mesh it first (e.g. Poisson "
            "reconstruction) and pass the triangle mesh."
        )
    if len(v) == 0:
        raise ValueError(f"{name} has faces but no vertices; the file is broken, export it again.")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} has non-finite vertex coordinates (NaN or inf); repair the mesh and export again.")
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError(
            f"{name} has face indices in [{f.min()}, {f.max()}] but only {len(v)} vertices; the file is broken."
        )
    if len(f) > config.max_faces:
        raise ValueError(
            f"{name} has {len(f):,} faces, more than the limit of {config.max_faces:,}: every vertex is stored once "
            "per animation frame. Decimate it first (Blender: Decimate modifier) or raise max_faces."
        )
    used = v[np.unique(f)]
    if float(np.ptp(used, axis=0).max()) == 0.0:
        raise ValueError(f"{name}: all its faces collapse to one point; there is no surface to animate.")
    classes, _ = weld_vertices(v)
    _, counts = edge_counts(classes[f])
    notes = []
    boundary, non_manifold = int((counts == 1).sum()), int((counts > 2).sum())
    if boundary:
        notes.append(
            f"open surface ({boundary} boundary edges): holes a few voxels wide are closed for inside/outside, "
            "wider openings leave a thin shell"
        )
    if non_manifold:
        notes.append(f"{non_manifold} non-manifold edges (shared by 3+ triangles): inside/outside ignores them")
    return notes


__all__ = ["MeshCheckConfig", "check_mesh"]
