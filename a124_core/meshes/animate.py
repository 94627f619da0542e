"""Animate an existing mesh (issue 15): the user's mesh -> canonical field -> deformation stage -> the same mesh
with one morph target per frame.

1. `scene_from_mesh` fits the canonical StaticField to the mesh (seconds to minutes, no prior).
2. The coarse stage on the deformation representation (`CoarseStage`, canonical frozen) with video SDS under the
   motion prompt, Zero123 on frame 0 (optional) and the reference-view reconstruction, both against an exact
   front render of the mesh (`render_mesh`: the reference image is the mesh itself), plus ARAP on the mesh's own
   vertices (`training/terms/arap.py`).
3. Every vertex of the user's mesh is moved forward by the trained field (inverse warp,
   `outputs/animated_mesh.frame_positions`) and written back onto the user's GLB (`writeback.write_animated_source`):
   same vertices, faces, UVs, materials, one clip.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from dataclasses import field as dfield
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..cameras import CameraConfig, reference_camera
from ..outputs.animated_mesh import AnimatedMeshConfig, InverseWarpStats, frame_positions
from ..training.coarse_stage import CoarseStage, DynamicPriors
from ..training.config import CoarseStageConfig
from ..training.representations import REPRESENTATIONS
from .asset import MeshAsset
from .fit import MeshFitConfig, MeshFitResult
from .loading import MeshLoadConfig, load_mesh, mesh_from_tensors
from .raster import render_mesh
from .surface import MeshSurface
from .writeback import write_animated_source

#: The representation a user's mesh is animated with: its points keep their identity over time (Dream-in-4D's).
MESH_REPRESENTATION = "deformation"


@dataclass(frozen=True)
class MeshAnimationConfig:
    """Everything a mesh animation runs with besides the mesh, the prompt and the priors."""

    fit: MeshFitConfig = dfield(default_factory=MeshFitConfig)
    """How the canonical field is fitted to the mesh."""
    stage: CoarseStageConfig = dfield(
        default_factory=lambda: CoarseStageConfig(representation=REPRESENTATIONS[MESH_REPRESENTATION])
    )
    """The dynamic stage, on a representation that keeps correspondence (deformation); its `arap` holds the ARAP
    weight."""
    export: AnimatedMeshConfig = dfield(default_factory=AnimatedMeshConfig)
    """Frames, fps, inverse-warp iterations and morph encoding of the written GLB (its marching-cubes settings are
    unused: the user's mesh is written back)."""
    reference_size: int = 256
    """Side of the front render of the mesh that Zero123 and the frame-0 reconstruction see (Zero123's 256)."""
    load: MeshLoadConfig = dfield(default_factory=MeshLoadConfig)
    """Input checks (face limit, missing textures)."""

    def __post_init__(self) -> None:
        if not self.stage.representation.keeps_correspondence:
            raise ValueError(
                "Mesh animation moves the user's vertices, so its stage needs a representation whose points keep "
                f"their identity over time (deformation), got {self.stage.representation.name!r}"
            )


def mesh_animation_config(preset: Any, arap_weight: float | None = None) -> MeshAnimationConfig:
    """A preset's mesh animation: its coarse stage on its deformation field, its static field's sizes for the fit,
    its export settings; `arap_weight` overrides the ARAP weight (0 turns ARAP off)."""
    stage = replace(preset.coarse, representation=preset.representation(MESH_REPRESENTATION))
    if arap_weight is not None:
        stage = replace(stage, arap=replace(stage.arap, weight=float(arap_weight)))
    fit = replace(preset.mesh_fit, field=preset.static.field, occupancy=preset.static.occupancy)
    size = 32 if preset.name == "smoke" else 256
    return MeshAnimationConfig(fit, stage, preset.mesh, size)


def load_input(mesh: Any, config: MeshLoadConfig = MeshLoadConfig()) -> MeshAsset:
    """A mesh file path, or ComfyUI's MESH (anything with `.vertices` and `.faces`) -> checked MeshAsset."""
    if isinstance(mesh, (str, Path)):
        return load_mesh(mesh, config)
    if hasattr(mesh, "vertices") and hasattr(mesh, "faces"):
        return mesh_from_tensors(mesh.vertices, mesh.faces, config)
    raise ValueError(f"Expected a mesh file or a MESH (vertices + faces), got {type(mesh).__name__}.")


@dataclass
class MeshReference:
    """The reference view of a mesh animation: the mesh's own exact front render (what `Stage` reads)."""

    rgb: Tensor  # [3, S, S] on white
    alpha: Tensor  # [1, S, S]
    mask: Tensor  # [1, S, S] in {0, 1}
    depth: Tensor | None = None  # no depth loss: the colour and mask are exact already


def mesh_reference(surface: MeshSurface, size: int, camera: CameraConfig = CameraConfig()) -> MeshReference:
    """Front render of the mesh from the reference camera (polar 90, azimuth 0: glTF's +z front)."""
    out = render_mesh(surface, reference_camera(camera).to(surface.vertices.device), size, size)
    alpha = out["opacity"][0].permute(2, 0, 1).cpu()
    return MeshReference(out["rgb"][0].permute(2, 0, 1).cpu(), alpha, (alpha > 0.5).float())


def animation_stage(
    fit: MeshFitResult,
    config: MeshAnimationConfig,
    priors: DynamicPriors,
    prompt: str,
    negative_prompt: str = "",
    device: Any = None,
    reference: Any = None,
) -> CoarseStage:
    """The deformation stage around the fitted canonical field, with ARAP on the mesh's vertices. `reference`:
    default the mesh's own front render; a `ReferenceClip` of the mesh in motion animates it from a video
    (`meshes/from_video.py`)."""
    if reference is None:
        reference = mesh_reference(fit.surface, config.reference_size, config.stage.camera)
    vertices = fit.surface.vertices.detach().cpu().numpy()
    faces = fit.surface.faces.cpu().numpy()
    return CoarseStage(
        config.stage, reference, fit.scene, priors, prompt, negative_prompt, device, mesh=(vertices, faces)
    )


def animated_positions(
    field: Any, fit: MeshFitResult, export: AnimatedMeshConfig, device: Any = "cpu", times: list[float] | None = None
) -> tuple[np.ndarray, InverseWarpStats]:
    """Scene-space positions [frames, V, 3] of every vertex of the user's mesh at `times` (default export.times())."""
    vertices = fit.surface.vertices.detach().cpu().numpy().astype(np.float32)
    with torch.no_grad():
        return frame_positions(field, vertices, times or export.times(), export, device)


@dataclass
class WrittenAnimation:
    """The written GLB and what it holds."""

    path: Path
    bytes: int
    positions: np.ndarray
    """[frames, V, 3] float32 file-space positions of the asset's vertices (ComfyUI's MESH frames)."""
    stats: InverseWarpStats
    note: str


def write_animation(
    asset: MeshAsset, fit: MeshFitResult, field: Any, path: str | Path, export: AnimatedMeshConfig, device="cpu"
) -> WrittenAnimation:
    """Move the user's vertices with `field` and write them back onto the user's GLB at `path` (atomic)."""
    scene_positions, stats = animated_positions(field, fit, export, device)
    written, reports = write_animated_source(
        asset, fit.transform, scene_positions, path, export.fps, export.interpolation, export.encoding
    )
    note = (
        f"{asset.num_vertices} vertices, {asset.num_faces} faces, {len(scene_positions)} morph targets "
        f"({', '.join(sorted({r.encoding for r in reports}))}); inverse warp residual max "
        f"{max(stats.max_residual):.2e}, {stats.unconverged} unconverged vertex-frames"
    )
    file_positions = fit.transform.to_file(scene_positions).astype(np.float32)
    return WrittenAnimation(written, written.stat().st_size, file_positions, stats, note)


@torch.no_grad()
def orbit_videos(scene: Any, orbit: Any, render: Any) -> dict[str, Tensor]:
    """The animated field's test orbit as videos [F, H, W, 3]: 'orbit_grid' (every view, tiled) and
    'orbit_animating' (one turn over the animation), through the scene renders of outputs/render.py."""
    from ..outputs.render import orbit_grid_video, render_orbit_animating, render_test_orbit

    grid = render_test_orbit(scene.field, orbit, ("albedo",), scene.occupancy, render)["albedo"]
    animating = render_orbit_animating(scene.field, orbit, ("albedo",), scene.occupancy, render)["albedo"]
    return {"orbit_grid": orbit_grid_video(grid), "orbit_animating": animating}


__all__ = [
    "MESH_REPRESENTATION",
    "MeshAnimationConfig",
    "MeshReference",
    "WrittenAnimation",
    "animated_positions",
    "animation_stage",
    "load_input",
    "mesh_animation_config",
    "mesh_reference",
    "orbit_videos",
    "write_animation",
]
