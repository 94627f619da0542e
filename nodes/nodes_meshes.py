"""Animated meshes: a dynamic scene as an animated GLB for ComfyUI's 3D viewer and its MESH type, and the user's
own mesh animated (Animate Mesh)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from a124_core.priors.base import PriorKind

from .glue import (
    CATEGORY,
    PRIOR_TYPES,
    SCENE_ANY_DYNAMIC,
    clone_tree,
    folder_paths,
    output_dir,
    torch_device,
    training_mode,
)


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
        from a124_core.training.representations import export_animated_glb

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
            exported = export_animated_glb(local.field, path, config, torch_device())
        count = len(exported.vertices) if exported.shared_topology else 1
        vertices = torch.from_numpy(np.stack(exported.vertices[:count]))
        faces = torch.from_numpy(exported.faces[0].astype(np.int64))[None].expand(count, -1, -1)
        model_file = relative_to_output(exported.path)
        ui = {"text": [f"{model_file}: {exported.bytes:,} bytes; {exported.note}"]}
        return {"ui": ui, "result": (model_file, comfy_mesh(vertices, faces))}


class A124_AnimateMesh:
    """Animates the user's own mesh from a motion prompt and writes it back with a morph target per frame."""

    DESCRIPTION = (
        "Animates an existing 3D model: fits the canonical field to the mesh (a MESH, or a file from input/3d as Load "
        "3D gives it), trains a deformation field with the video prior (motion prompt), Zero123 on a front render "
        "of the mesh and an as-rigid-as-possible term on the mesh's own edges, then writes the SAME mesh (vertices, "
        "faces, UVs, materials) with one morph target per frame to output/animate124/meshes/. Wire model_file into "
        "Preview 3D - Animation."
    )
    CATEGORY = f"{CATEGORY}/training"
    FUNCTION = "animate"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", "MESH", "IMAGE")
    RETURN_NAMES = ("model_file", "mesh", "orbit")
    OUTPUT_TOOLTIPS = (
        "The animated GLB, relative to the output folder (Preview 3D's model_file).",
        "The animated mesh, one batch item per frame.",
        "One turn around the animated field while it moves (the render path's orbit video).",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        from a124_core.presets import PRESETS

        return {
            "required": {
                "prompt": (
                    "STRING",
                    {"default": "a robot is waving its arms", "multiline": True, "tooltip": "The motion prompt."},
                ),
                "preset": (list(PRESETS), {"default": "paper", "tooltip": "paper, fast, or smoke (install check)."}),
                "steps": ("INT", {"default": 0, "min": 0, "max": 1_000_000, "tooltip": "Iterations; 0 = preset's."}),
                "training_seed": ("INT", {"default": 3407, "min": 0, "max": 2**31 - 1, "tooltip": "Seed."}),
                "frames": ("INT", {"default": 64, "min": 1, "max": 512, "tooltip": "Morph targets (frames)."}),
                "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 120.0, "tooltip": "Playback rate."}),
                "arap_weight": (
                    "FLOAT",
                    {"default": 1000.0, "min": 0.0, "max": 1e6, "tooltip": "As-rigid-as-possible weight; 0 = off."},
                ),
            },
            "optional": {
                "model_file": (
                    "STRING",
                    {"forceInput": True, "tooltip": "Load 3D's mesh_path: a mesh under input/, e.g. 3d/robot.glb."},
                ),
                "mesh": ("MESH", {"tooltip": "A MESH from a 3D node (used instead of model_file)."}),
                "video_prior": (PRIOR_TYPES[PriorKind.VIDEO_TEXT], {"tooltip": "Video-text prior."}),
                "zero123_prior": (PRIOR_TYPES[PriorKind.IMAGE_POSE], {"tooltip": "Zero123 on frame 0 (optional)."}),
                "negative_prompt": ("STRING", {"default": "", "tooltip": "Negative prompt of the video prior."}),
                "run_name": ("STRING", {"default": "animate124_mesh", "tooltip": "Checkpoint sub-folder."}),
            },
        }

    def animate(
        self,
        prompt,
        preset,
        steps,
        training_seed,
        frames,
        fps,
        arap_weight,
        model_file="",
        mesh=None,
        video_prior=None,
        zero123_prior=None,
        negative_prompt="",
        run_name="animate124_mesh",
    ):
        from a124_core.meshes import scene_from_mesh
        from a124_core.meshes.animate import (
            MESH_REPRESENTATION,
            animation_stage,
            load_input,
            mesh_animation_config,
            write_animation,
        )
        from a124_core.outputs.render import render_orbit_animating
        from a124_core.presets import preset as get_preset
        from a124_core.training.coarse_stage import DynamicPriors

        from .nodes_stages import train_stage_node

        asset = load_input(mesh if mesh is not None else input_mesh_path(model_file))
        chosen = get_preset(preset, MESH_REPRESENTATION).with_seed(int(training_seed))
        config = mesh_animation_config(chosen, float(arap_weight))
        if steps:
            config = replace(config, stage=replace(config.stage, steps=int(steps)))
        export = replace(config.export, num_frames=int(frames), fps=float(fps))
        device, fitted = torch_device(), {}

        def make_stage():
            fitted["fit"] = scene_from_mesh(asset, config.fit, device=device)
            priors = DynamicPriors(video_prior, zero123_prior)
            return animation_stage(fitted["fit"], config, priors, prompt, negative_prompt, device)

        scene, _, _ = train_stage_node(make_stage, run_name, "")
        folder = output_dir("meshes")
        index = len(list(folder.glob("animated_mesh_*.glb"))) + 1
        with training_mode():
            written = write_animation(
                asset, fitted["fit"], scene.field, folder / f"animated_mesh_{index:05d}.glb", export, device
            )
            orbit = replace(chosen.orbit, num_frames=int(frames))
            with torch.no_grad():
                video = render_orbit_animating(scene.field, orbit, ("albedo",), scene.occupancy, config.stage.render)
        count = written.positions.shape[0]
        faces = torch.from_numpy(asset.faces.astype(np.int64))[None].expand(count, -1, -1)
        model = relative_to_output(written.path)
        ui = {"text": [f"{model}: {written.bytes:,} bytes; {written.note}", *asset.notes]}
        return {"ui": ui, "result": (model, comfy_mesh(torch.from_numpy(written.positions), faces), video["albedo"])}


def input_mesh_path(model_file: str) -> Path:
    """A mesh file named relative to ComfyUI's input folder (Load 3D's mesh_path, e.g. '3d/robot.glb')."""
    if not model_file or not model_file.strip():
        raise ValueError("Animate Mesh needs a mesh: wire a MESH, or a model_file from Load 3D (e.g. 3d/robot.glb).")
    root = Path(folder_paths().get_input_directory()).resolve()
    path = (root / model_file.strip()).resolve()
    if root not in path.parents:
        raise ValueError(f"model_file {model_file!r} must lie inside ComfyUI's input folder ({root}).")
    if not path.is_file():
        raise FileNotFoundError(f"model_file {model_file!r} not found in {root}; put it in input/3d (Load 3D).")
    return path


NODE_CLASS_MAPPINGS = {"A124_ExportAnimatedMesh": A124_ExportAnimatedMesh, "A124_AnimateMesh": A124_AnimateMesh}
NODE_DISPLAY_NAME_MAPPINGS = {
    "A124_ExportAnimatedMesh": "Export Animated Mesh (Animate124)",
    "A124_AnimateMesh": "Animate Mesh (Animate124)",
}
