"""Animate an existing 3D model: read the user's mesh, fit the canonical field to it, keep the way back.

Read top-down: `loading` (files and ComfyUI MESH -> `MeshAsset`, input `checks`) -> `normalise` (file <-> scene
transform) -> `surface` (colour model, samples) -> `raster` (exact mesh renders) and `inside` (occupancy) ->
`fit` (mesh -> static `Scene`) ; `writeback` (the GLB and per-primitive local positions that morph targets are
attached to). The ARAP energy on a mesh's edges lives below, in `a124_core.geometry`, since training uses it too.
"""

from .asset import Material, MeshAsset, MeshSource, PrimitiveSegment
from .checks import MeshCheckConfig
from .fit import FitReport, MeshFitConfig, MeshFitResult, evaluate_fit, fit_field_to_mesh, scene_from_mesh
from .loading import EXTENSIONS, MeshLoadConfig, load_mesh, mesh_from_tensors
from .normalise import DEFAULT_RADIUS, MeshTransform, fit_transform
from .raster import render_mesh
from .surface import MeshSurface
from .writeback import primitive_positions, source_glb

__all__ = [
    "DEFAULT_RADIUS",
    "EXTENSIONS",
    "FitReport",
    "Material",
    "MeshAsset",
    "MeshCheckConfig",
    "MeshFitConfig",
    "MeshFitResult",
    "MeshLoadConfig",
    "MeshSource",
    "MeshSurface",
    "MeshTransform",
    "PrimitiveSegment",
    "evaluate_fit",
    "fit_field_to_mesh",
    "fit_transform",
    "load_mesh",
    "mesh_from_tensors",
    "primitive_positions",
    "render_mesh",
    "scene_from_mesh",
    "source_glb",
]
