"""Animate an existing 3D model: read the user's mesh and keep the way back onto its file.

Read top-down: `loading` (files and ComfyUI MESH -> `MeshAsset`, input `checks`) ; `writeback` (the GLB and
per-primitive local positions that morph targets are attached to).
"""

from .asset import Material, MeshAsset, MeshSource, PrimitiveSegment
from .checks import MeshCheckConfig
from .loading import EXTENSIONS, MeshLoadConfig, load_mesh, mesh_from_tensors
from .normalise import DEFAULT_RADIUS, MeshTransform, fit_transform
from .writeback import primitive_positions, source_glb

__all__ = [
    "DEFAULT_RADIUS",
    "EXTENSIONS",
    "Material",
    "MeshAsset",
    "MeshCheckConfig",
    "MeshLoadConfig",
    "MeshSource",
    "MeshTransform",
    "PrimitiveSegment",
    "fit_transform",
    "load_mesh",
    "mesh_from_tensors",
    "primitive_positions",
    "source_glb",
]
