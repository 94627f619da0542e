"""Animated meshes: a dynamic scene as an animated GLB for ComfyUI's 3D viewer, and as its MESH type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .glue import CATEGORY, SCENE_ANY_DYNAMIC, clone_tree, folder_paths, output_dir, torch_device, training_mode


def comfy_mesh(vertices: torch.Tensor, faces: torch.Tensor) -> Any:
    """ComfyUI's MESH (vertices [B, V, 3], faces [B, F, 3]); a stand-in with the same fields outside ComfyUI."""
    try:
        from comfy_extras.nodes_hunyuan3d import MESH
    except ImportError:
        from types import SimpleNamespace as MESH
    return MESH(vertices=vertices, faces=faces)


def relative_to_output(path: Path) -> str:
    """The path ComfyUI's Preview 3D nodes load (relative to the output folder, forward slashes)."""
    return Path(path).resolve().relative_to(Path(folder_paths().get_output_directory()).resolve()).as_posix()


class A124_ExportAnimatedMesh:
    """Writes a dynamic scene as one animated GLB (morph targets for deformation scenes)."""

    DESCRIPTION = (
        "Exports a dynamic scene as an animated GLB in output/animate124/meshes/: one mesh whose vertices move (a "
        "morph target per frame) for deformation scenes, one mesh per frame for 4D-grid scenes. Wire model_file into "
        "Preview 3D - Animation; mesh is ComfyUI's MESH (all frames for deformation scenes, frame 0 otherwise)."
    )
    CATEGORY = f"{CATEGORY}/outputs"
    FUNCTION = "export"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", "MESH")
    RETURN_NAMES = ("model_file", "mesh")
    OUTPUT_TOOLTIPS = ("The GLB, relative to the output folder (Preview 3D's model_file).", "The mesh frames.")

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "scene": (SCENE_ANY_DYNAMIC, {"tooltip": "A coarse or refined scene (stage output or Load Scene)."}),
                "frames": ("INT", {"default": 64, "min": 1, "max": 512, "tooltip": "Frames at t = k / (frames - 1)."}),
                "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 120.0, "tooltip": "Playback rate of the clip."}),
                "resolution": (
                    "INT",
                    {"default": 256, "min": 16, "max": 1024, "step": 8, "tooltip": "Marching-cubes samples per axis."},
                ),
                "target_faces": (
                    "INT",
                    {"default": 50000, "min": 0, "max": 2_000_000, "tooltip": "Decimate to about this; 0 keeps all."},
                ),
                "filename_prefix": ("STRING", {"default": "animate124", "tooltip": "File name prefix."}),
            }
        }

    def export(self, scene, frames, fps, resolution, target_faces, filename_prefix):
        from a124_core.outputs.animated_mesh import AnimatedMeshConfig
        from a124_core.outputs.mesh import MeshConfig
        from a124_core.outputs.scene_export import export_scene_glb

        config = AnimatedMeshConfig(
            mesh=MeshConfig(resolution=int(resolution)),
            target_faces=int(target_faces),
            num_frames=int(frames),
            fps=float(fps),
        )
        folder = output_dir("meshes")
        index = len(list(folder.glob(f"{filename_prefix}_*.glb"))) + 1
        path = folder / f"{filename_prefix}_{index:05d}.glb"
        with training_mode():
            local = clone_tree(scene).to(torch_device())
            exported = export_scene_glb(local.field, path, config, torch_device())
        count = len(exported.vertices) if exported.shared_topology else 1
        vertices = torch.from_numpy(np.stack(exported.vertices[:count]))
        faces = torch.from_numpy(exported.faces[0].astype(np.int64))[None].expand(count, -1, -1)
        model_file = relative_to_output(exported.path)
        ui = {"text": [f"{model_file}: {exported.bytes:,} bytes; {exported.note}"]}
        return {"ui": ui, "result": (model_file, comfy_mesh(vertices, faces))}


NODE_CLASS_MAPPINGS = {"A124_ExportAnimatedMesh": A124_ExportAnimatedMesh}
NODE_DISPLAY_NAME_MAPPINGS = {"A124_ExportAnimatedMesh": "Export Animated Mesh (Animate124)"}
