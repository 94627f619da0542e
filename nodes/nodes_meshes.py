"""Animated meshes: a dynamic scene as an animated GLB for ComfyUI's 3D viewer and its MESH type, and the user's
own mesh animated (Animate Mesh), picked from input/3d (no 3D canvas needed, so it runs from the HTTP API)."""

from __future__ import annotations

import numpy as np
import torch
from comfy_api.v0_0_2 import io, ui

from a124_core.priors.base import PriorKind

from .glue import (
    CATEGORY,
    DYNAMIC_SCENES,
    NOT_WIRED,
    PRIOR_TYPES,
    check_numbers,
    clone_tree,
    first_error,
    scene_input,
    torch_device,
    training_mode,
)
from .mesh_run import (
    MeshRunSettings,
    animate_and_write,
    check_mesh_inputs,
    comfy_mesh,
    file_inputs,
    input_mesh_path,
    mesh_input,
    mesh_outputs,
    model_file_input,
    training_widgets,
)
from .output_files import check_prefix, check_writable, next_numbered_path, output_dir, relative_to_output


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
        return first_error(check_numbers(cls, fps=fps), prefix, check_writable("meshes"))

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
                model_file_input(
                    "A mesh in ComfyUI/input/3d (.glb, .gltf, .obj, .ply, .stl); Load 3D uploads there. Ignored when "
                    "a MESH is wired."
                ),
                io.String.Input(
                    "prompt", default="a robot is waving its arms", multiline=True, tooltip="The motion prompt."
                ),
                *training_widgets(),
                mesh_input(),
                PRIOR_TYPES[PriorKind.VIDEO_TEXT].Input("video_prior", optional=True, tooltip="Video-text prior."),
                PRIOR_TYPES[PriorKind.IMAGE_POSE].Input(
                    "zero123_prior", optional=True, tooltip="Zero123 on frame 0 (optional)."
                ),
                io.String.Input(
                    "negative_prompt", default="", optional=True, tooltip="Negative prompt of the video prior."
                ),
                *file_inputs("animate124_mesh", "animated_mesh"),
            ],
            outputs=[
                *mesh_outputs(),
                io.Image.Output(
                    "front_view",
                    display_name="front_view",
                    tooltip="The mesh's exact front render (512 px on white) from the reference camera: the image to "
                    "hand an image-to-video model for Animate Mesh from Video.",
                ),
            ],
        )

    @classmethod
    def validate_inputs(
        cls, model_file=None, mesh=NOT_WIRED, prompt=None, fps=None, arap_weight=None, run_name=None,
        filename_prefix=None,
    ) -> bool | str:  # fmt: skip
        numbers = dict(fps=fps, arap_weight=arap_weight)
        return check_mesh_inputs(cls, model_file, mesh, filename_prefix, prompt, run_name, **numbers)

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
        from a124_core.meshes.animate import MESH_REPRESENTATION, load_input
        from a124_core.meshes.from_video import front_view
        from a124_core.presets import preset as get_preset
        from a124_core.training.coarse_stage import DynamicPriors

        asset = load_input(mesh if mesh is not None else input_mesh_path(model_file))
        chosen = get_preset(preset, MESH_REPRESENTATION).with_seed(int(training_seed))
        front = front_view(asset).rgb.permute(1, 2, 0)[None].contiguous()
        settings = MeshRunSettings(chosen, int(steps), int(frames), float(fps), float(arap_weight), run_name)
        priors = DynamicPriors(video_prior, zero123_prior)
        result = animate_and_write(asset, settings, priors, prompt, negative_prompt, filename_prefix)
        return io.NodeOutput(*result.outputs, front, ui=result.text)
