"""Animated meshes: a dynamic scene as an animated GLB for ComfyUI's 3D viewer and its MESH type, and the user's
own mesh animated (Animate Mesh), picked from input/3d (no 3D canvas needed, so it runs from the HTTP API)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from comfy_api.v0_0_2 import io, ui

from a124_core.presets import PRESETS
from a124_core.priors.base import PriorKind

from .glue import (
    CATEGORY,
    DYNAMIC_SCENES,
    PRIOR_TYPES,
    check_numbers,
    clone_tree,
    first_error,
    folder_paths,
    scene_input,
    torch_device,
    train_stage_node,
    training_mode,
)
from .output_files import check_prefix, next_numbered_path, output_dir, relative_to_output

#: Sub-folder of ComfyUI's input folder Load 3D and Animate Mesh list meshes from.
MESH_INPUT_FOLDER = "3d"
#: validate_inputs default of `mesh`: not wired (a wired input is None at validation time).
_NOT_WIRED = object()


def comfy_mesh(vertices: torch.Tensor, faces: torch.Tensor) -> Any:
    """ComfyUI's MESH (vertices [B, V, 3], faces [B, F, 3]): `Types.MESH` where the API has it (0.8), else the class of
    0.3.x's 3D nodes."""
    from comfy_api.v0_0_2 import Types

    mesh_class = getattr(Types, "MESH", None)
    if mesh_class is None:
        from comfy_extras.nodes_hunyuan3d import MESH as mesh_class
    return mesh_class(vertices, faces)


def input_meshes() -> list[str]:
    """Mesh files under input/3d the library reads, as "3d/<name>" (Load 3D's naming)."""
    from a124_core.meshes.loading import EXTENSIONS

    root = Path(folder_paths().get_input_directory())
    folder = root / MESH_INPUT_FOLDER
    if not folder.is_dir():
        return []
    found = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS]
    return sorted(p.relative_to(root).as_posix() for p in found)


def input_mesh_path(model_file: str) -> Path:
    """A mesh file named relative to ComfyUI's input folder (e.g. '3d/robot.glb'); the error says how to fix it."""
    if not model_file or not model_file.strip():
        raise ValueError("Animate Mesh needs a mesh: pick a model_file from input/3d, or wire a MESH.")
    root = Path(folder_paths().get_input_directory()).resolve()
    path = (root / model_file.strip()).resolve()
    if root not in path.parents:
        raise ValueError(f"model_file {model_file!r} must lie inside ComfyUI's input folder ({root}).")
    if not path.is_file():
        raise FileNotFoundError(f"model_file {model_file!r} not found in {root}; put the mesh in input/3d.")
    return path


class A124_ExportAnimatedMesh(io.ComfyNode):
    """Writes a dynamic scene as one animated GLB (morph targets for deformation scenes)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_ExportAnimatedMesh",
            display_name="Export Animated Mesh (Animate124)",
            category=f"{CATEGORY}/outputs",
            description="Exports a dynamic scene as an animated GLB in output/animate124/meshes/: one mesh whose "
            "vertices move (a morph target per frame) for deformation scenes, one mesh per frame for 4D-grid scenes. "
            "Wire model_file into Preview 3D & Animation; mesh is ComfyUI's MESH (all frames for deformation scenes, "
            "frame 0 otherwise).",
            is_output_node=True,
            inputs=[
                scene_input("scene", DYNAMIC_SCENES, "A coarse or refined scene (stage output or Load Scene)."),
                io.Int.Input("frames", default=64, min=1, max=512, tooltip="Frames at t = k / (frames - 1)."),
                io.Float.Input("fps", default=25.0, min=1.0, max=120.0, tooltip="Playback rate of the clip."),
                io.Int.Input(
                    "resolution", default=256, min=16, max=1024, step=8, tooltip="Marching-cubes samples per axis."
                ),
                io.Int.Input(
                    "target_faces", default=50000, min=0, max=2_000_000, tooltip="Decimate to about this; 0 keeps all."
                ),
                io.String.Input("filename_prefix", default="animate124", tooltip="File name prefix."),
            ],
            outputs=[
                io.String.Output(
                    "model_file",
                    display_name="model_file",
                    tooltip="The GLB, relative to the output folder (Preview 3D's model_file).",
                ),
                io.Mesh.Output("mesh", display_name="mesh", tooltip="The mesh frames."),
            ],
        )

    @classmethod
    def validate_inputs(cls, fps=None, filename_prefix=None) -> bool | str:
        prefix = True if filename_prefix is None else check_prefix(filename_prefix)
        return first_error(check_numbers(cls, fps=fps), prefix)

    @classmethod
    def execute(cls, scene, frames, fps, resolution, target_faces, filename_prefix) -> io.NodeOutput:
        from a124_core.outputs.animated_mesh import AnimatedMeshConfig
        from a124_core.outputs.mesh import MeshConfig
        from a124_core.training.representations import export_animated_glb

        config = AnimatedMeshConfig(
            mesh=MeshConfig(resolution=int(resolution)),
            target_faces=int(target_faces),
            num_frames=int(frames),
            fps=float(fps),
        )
        path = next_numbered_path(output_dir("meshes"), filename_prefix, ".glb")
        with training_mode():
            local = clone_tree(scene).to(torch_device())
            exported = export_animated_glb(local.field, path, config, torch_device())
        count = len(exported.vertices) if exported.shared_topology else 1
        vertices = torch.from_numpy(np.stack(exported.vertices[:count]))
        faces = torch.from_numpy(exported.faces[0].astype(np.int64))[None].expand(count, -1, -1)
        model_file = relative_to_output(exported.path)
        text = ui.PreviewText(f"{model_file}: {exported.bytes:,} bytes; {exported.note}")
        return io.NodeOutput(model_file, comfy_mesh(vertices, faces), ui=text)


class A124_AnimateMesh(io.ComfyNode):
    """Animates the user's own mesh from a motion prompt and writes it back with a morph target per frame."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        meshes = input_meshes()
        return io.Schema(
            node_id="A124_AnimateMesh",
            display_name="Animate Mesh (Animate124)",
            category=f"{CATEGORY}/training",
            description="Animates an existing 3D model (a file from input/3d, or a wired MESH): fits the canonical "
            "field to the mesh, trains a deformation field with the video prior (motion prompt), Zero123 on a front "
            "render of the mesh and an as-rigid-as-possible term on the mesh's own edges, then writes the SAME mesh "
            "(vertices, faces, UVs, materials) with one morph target per frame to output/animate124/meshes/. Wire "
            "model_file into Preview 3D & Animation.",
            is_output_node=True,
            inputs=[
                io.Combo.Input(
                    "model_file",
                    options=meshes,
                    default=meshes[0] if meshes else None,
                    tooltip="A mesh in ComfyUI/input/3d (.glb, .gltf, .obj, .ply, .stl); Load 3D uploads there. "
                    "Ignored when a MESH is wired.",
                ),
                io.String.Input(
                    "prompt", default="a robot is waving its arms", multiline=True, tooltip="The motion prompt."
                ),
                io.Combo.Input(
                    "preset", options=list(PRESETS), default="paper", tooltip="paper, fast, or smoke (install check)."
                ),
                io.Int.Input("steps", default=0, min=0, max=1_000_000, tooltip="Iterations; 0 = preset's."),
                io.Int.Input("training_seed", default=3407, min=0, max=2**31 - 1, tooltip="Seed."),
                io.Int.Input("frames", default=64, min=1, max=512, tooltip="Morph targets (frames)."),
                io.Float.Input("fps", default=25.0, min=1.0, max=120.0, tooltip="Playback rate."),
                io.Float.Input(
                    "arap_weight", default=1000.0, min=0.0, max=1e6, tooltip="As-rigid-as-possible weight; 0 = off."
                ),
                io.Mesh.Input("mesh", optional=True, tooltip="A MESH from a 3D node (used instead of model_file)."),
                PRIOR_TYPES[PriorKind.VIDEO_TEXT].Input("video_prior", optional=True, tooltip="Video-text prior."),
                PRIOR_TYPES[PriorKind.IMAGE_POSE].Input(
                    "zero123_prior", optional=True, tooltip="Zero123 on frame 0 (optional)."
                ),
                io.String.Input(
                    "negative_prompt", default="", optional=True, tooltip="Negative prompt of the video prior."
                ),
                io.String.Input(
                    "run_name",
                    default="animate124_mesh",
                    optional=True,
                    tooltip="Checkpoints go to output/animate124/checkpoints/<run_name>/.",
                ),
                io.String.Input(
                    "filename_prefix", default="animated_mesh", optional=True, tooltip="File name prefix of the GLB."
                ),
            ],
            outputs=[
                # Output ids differ from input ids (ComfyUI 0.3.x requires it); the names shown are display names.
                io.String.Output(
                    "glb_file",
                    display_name="model_file",
                    tooltip="The animated GLB, relative to the output folder (Preview 3D's model_file).",
                ),
                io.Mesh.Output(
                    "animated_mesh",
                    display_name="mesh",
                    tooltip="The animated mesh, one batch item per frame.",
                ),
                io.Image.Output(
                    "orbit",
                    display_name="orbit",
                    tooltip="One turn around the animated field while it moves (the render path's orbit video).",
                ),
            ],
        )

    @classmethod
    def validate_inputs(
        cls, model_file=None, mesh=_NOT_WIRED, fps=None, arap_weight=None, filename_prefix=None
    ) -> bool | str:
        checks = [check_numbers(cls, fps=fps, arap_weight=arap_weight)]
        if filename_prefix is not None:
            checks.append(check_prefix(filename_prefix))
        if mesh is _NOT_WIRED and model_file is not None and model_file not in input_meshes():
            checks.append(
                f"model_file {model_file!r} is not a mesh in ComfyUI/input/3d (found: "
                f"{', '.join(input_meshes()) or 'none'}); put the file there, or wire a MESH."
            )
        return first_error(*checks)

    @classmethod
    def execute(
        cls,
        model_file,
        prompt,
        preset,
        steps,
        training_seed,
        frames,
        fps,
        arap_weight,
        mesh=None,
        video_prior=None,
        zero123_prior=None,
        negative_prompt="",
        run_name="animate124_mesh",
        filename_prefix="animated_mesh",
    ) -> io.NodeOutput:
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
        path = next_numbered_path(output_dir("meshes"), filename_prefix, ".glb")
        with training_mode():
            written = write_animation(asset, fitted["fit"], scene.field, path, export, device)
            orbit = replace(chosen.orbit, num_frames=int(frames))
            with torch.no_grad():
                video = render_orbit_animating(scene.field, orbit, ("albedo",), scene.occupancy, config.stage.render)
        count = written.positions.shape[0]
        faces = torch.from_numpy(asset.faces.astype(np.int64))[None].expand(count, -1, -1)
        model = relative_to_output(written.path)
        text = ui.PreviewText("\n".join([f"{model}: {written.bytes:,} bytes; {written.note}", *asset.notes]))
        return io.NodeOutput(model, comfy_mesh(torch.from_numpy(written.positions), faces), video["albedo"], ui=text)
