"""A dynamic scene as an animated glTF binary, in the two ways the representations choose between
(`training/representations`: each representation's `export` calls one of these).

Deformation scenes keep correspondence: one canonical mesh whose vertices the field moves, stored as one morph
target per frame (outputs/animated_mesh.py). 4D-grid scenes have none: each frame is its own marching-cubes mesh,
shown one at a time (outputs/mesh.py `write_animated_glb`). Both play with their frame count / fps as one clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .animated_mesh import AnimatedMeshConfig, export_animated_mesh
from .mesh import extract_mesh_sequence, write_animated_glb


@dataclass
class ExportedMesh:
    """What was written, and the meshes themselves (for ComfyUI's MESH type)."""

    path: Path
    """The .glb file."""
    bytes: int
    """Its size."""
    vertices: list[np.ndarray]
    """Per frame [V_f, 3] float32 (one shared V for deformation scenes)."""
    faces: list[np.ndarray]
    """Per frame [F_f, 3] int64 (the same array for every frame of a deformation scene)."""
    shared_topology: bool
    """True when every frame has the same vertices and faces (morph targets)."""
    note: str
    """One line on how it was made (decimation, inverse-warp residuals)."""


def export_morph_targets(
    field, path: str | Path, config: AnimatedMeshConfig, device: str | torch.device = "cpu"
) -> ExportedMesh:
    """A field with correspondence over time (a deformation field): one canonical mesh, a morph target per frame."""
    asset, report, size = export_animated_mesh(field, path, config, device)
    stats = asset.stats
    note = (
        f"{len(asset.mesh.faces)} faces, {config.num_frames} morph targets ({report.encoding}); "
        f"{asset.decimation}; inverse warp residual max {max(stats.max_residual):.2e}, "
        f"{stats.unconverged} unconverged vertex-frames"
    )
    frames = [p.astype(np.float32) for p in asset.positions]
    return ExportedMesh(Path(path), size, frames, [asset.mesh.faces] * len(frames), True, note)


def export_frame_meshes(
    field, path: str | Path, config: AnimatedMeshConfig, device: str | torch.device = "cpu"
) -> ExportedMesh:
    """A field without correspondence (a 4D grid): each frame its own marching-cubes mesh, shown one at a time."""

    def at_time(t: float):
        return (lambda x: field.density(x, t)), (lambda x: field(x, t)[1])

    with torch.no_grad():
        meshes = extract_mesh_sequence(at_time, config.times(), config.mesh, device)
    written = write_animated_glb(meshes, path, config.fps)
    note = f"{len(meshes)} frames of their own topology (a 4D grid has no correspondence over time)"
    vertices = [m.vertices.astype(np.float32) for m in meshes]
    return ExportedMesh(written, written.stat().st_size, vertices, [m.faces for m in meshes], False, note)


__all__ = ["ExportedMesh", "export_frame_meshes", "export_morph_targets"]
