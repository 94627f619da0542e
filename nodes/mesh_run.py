"""What the mesh nodes share: meshes from ComfyUI's input/3d, ComfyUI's MESH type, their input checks, and the
run of a mesh animation (fit, train with ComfyUI progress, write the same mesh back, one orbit) behind Animate Mesh
and Animate Mesh from Video."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from comfy_api.v0_0_2 import io, ui

from a124_core.presets import PRESETS
from a124_core.training.terms.arap import ARAPTermConfig

from .glue import (
    NOT_WIRED,
    check_numbers,
    check_prompts,
    clone_tree,
    first_error,
    folder_paths,
    torch_device,
    train_stage_node,
    training_mode,
)
from .output_files import (
    check_prefix,
    check_run_name,
    check_writable,
    next_numbered_path,
    output_dir,
    relative_to_output,
)

#: Sub-folder of ComfyUI's input folder Load 3D and Animate Mesh list meshes from.
MESH_INPUT_FOLDER = "3d"


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


@dataclass(frozen=True)
class MeshRunSettings:
    """The widgets of a mesh animation node that shape its run."""

    preset: Any
    """The chosen preset (with the node's seed)."""
    steps: int
    """Iterations; 0 keeps the preset's."""
    frames: int
    """Morph targets written (and orbit frames)."""
    fps: float
    """Playback rate of the GLB's clip."""
    arap_weight: float
    """ARAP weight; 0 turns it off."""
    run_name: str
    """Checkpoint folder under output/animate124/checkpoints/."""


@dataclass
class MeshRunResult:
    """What a mesh animation node returns: (model_file, MESH frames, orbit IMAGE) and the text it shows."""

    outputs: tuple
    text: Any


def animate_and_write(
    asset: Any,
    settings: MeshRunSettings,
    priors: Any,
    prompt: str,
    negative_prompt: str,
    filename_prefix: str,
    reference: Any = None,
    notes: tuple[str, ...] = (),
) -> MeshRunResult:
    """Fit the canonical field to `asset`, train the deformation stage (with ComfyUI progress, previews and
    interrupts; `reference`: a clip of the mesh in motion, default its front render), write the same mesh with a
    morph target per frame and render one orbit while it moves. Shared by Animate Mesh and Animate Mesh from Video."""
    from a124_core.meshes import scene_from_mesh
    from a124_core.meshes.animate import animation_stage, mesh_animation_config, write_animation
    from a124_core.outputs.render import render_orbit_animating

    config = mesh_animation_config(settings.preset, settings.arap_weight)
    if settings.steps:
        config = replace(config, stage=replace(config.stage, steps=settings.steps))
    export = replace(config.export, num_frames=settings.frames, fps=settings.fps)
    device, fitted = torch_device(), {}

    def make_stage():
        fitted["fit"] = scene_from_mesh(asset, config.fit, device=device)
        clip = None if reference is None else clone_tree(reference)
        return animation_stage(fitted["fit"], config, priors, prompt, negative_prompt, device, reference=clip)

    scene, _, _ = train_stage_node(make_stage, settings.run_name, "")
    path = next_numbered_path(output_dir("meshes"), filename_prefix, ".glb")
    with training_mode():
        written = write_animation(asset, fitted["fit"], scene.field, path, export, device)
        orbit = replace(settings.preset.orbit, num_frames=settings.frames)
        with torch.no_grad():
            video = render_orbit_animating(scene.field, orbit, ("albedo",), scene.occupancy, config.stage.render)
    count = written.positions.shape[0]
    faces = torch.from_numpy(asset.faces.astype(np.int64))[None].expand(count, -1, -1)
    model = relative_to_output(written.path)
    text = ui.PreviewText("\n".join([f"{model}: {written.bytes:,} bytes; {written.note}", *asset.notes, *notes]))
    return MeshRunResult((model, comfy_mesh(torch.from_numpy(written.positions), faces), video["albedo"]), text)


def model_file_input(tooltip: str) -> Any:
    """The combo of meshes in input/3d (Load 3D's naming)."""
    meshes = input_meshes()
    return io.Combo.Input("model_file", options=meshes, default=meshes[0] if meshes else None, tooltip=tooltip)


def check_mesh_inputs(
    node: type,
    model_file: Any,
    mesh: Any,
    prefix: str | None = None,
    prompt: str | None = None,
    run_name: str | None = None,
    **numbers: Any,
) -> bool | str:
    """validate_inputs part of the mesh nodes: numbers in range, a prompt with a word (when given), a run name that
    is a folder name, writable output folders, a plain file prefix, and without a wired MESH a model_file that is
    in input/3d."""
    checks = [check_numbers(node, **numbers), check_prompts(prompt=prompt), check_run_name(run_name)]
    checks.append(check_writable("meshes"))
    if prefix is not None:
        checks.append(check_prefix(prefix))
    if mesh is NOT_WIRED and model_file is not None and model_file not in input_meshes():
        checks.append(
            f"model_file {model_file!r} is not a mesh in ComfyUI/input/3d (found: "
            f"{', '.join(input_meshes()) or 'none'}); put the file there, or wire a MESH."
        )
    return first_error(*checks)


def training_widgets() -> list:
    """The mesh animation nodes' run widgets, in their order: preset, steps, seed, frames, fps, ARAP weight."""
    return [
        io.Combo.Input(
            "preset", options=list(PRESETS), default="paper", tooltip="paper, fast, or smoke (install check)."
        ),
        io.Int.Input("steps", default=0, min=0, max=1_000_000, tooltip="Iterations; 0 = preset's."),
        io.Int.Input("training_seed", default=3407, min=0, max=2**31 - 1, tooltip="Seed."),
        io.Int.Input("frames", default=64, min=1, max=512, tooltip="Morph targets (frames)."),
        io.Float.Input("fps", default=25.0, min=1.0, max=120.0, tooltip="Playback rate."),
        io.Float.Input(
            "arap_weight",
            default=ARAPTermConfig.weight,
            min=0.0,
            max=1e6,
            tooltip="As-rigid-as-possible weight; 0 = off.",
        ),
    ]


def mesh_input() -> Any:
    return io.Mesh.Input("mesh", optional=True, tooltip="A MESH from a 3D node (used instead of model_file).")


def file_inputs(run_name: str, prefix: str) -> list:
    """run_name (checkpoint folder) and filename_prefix (the GLB's name) with their defaults."""
    return [
        io.String.Input(
            "run_name",
            default=run_name,
            optional=True,
            tooltip="Checkpoints go to output/animate124/checkpoints/<run_name>/.",
        ),
        io.String.Input("filename_prefix", default=prefix, optional=True, tooltip="File name prefix of the GLB."),
    ]


def mesh_outputs() -> list:
    """The animated GLB (Preview 3D's model_file), the MESH frames and one orbit while it moves."""
    # Output ids differ from input ids (ComfyUI 0.3.x requires it); the names shown are display names.
    return [
        io.String.Output(
            "glb_file",
            display_name="model_file",
            tooltip="The animated GLB, relative to the output folder (Preview 3D's model_file).",
        ),
        io.Mesh.Output("animated_mesh", display_name="mesh", tooltip="The animated mesh, one batch item per frame."),
        io.Image.Output(
            "orbit",
            display_name="orbit",
            tooltip="One turn around the animated field while it moves (the render path's orbit video).",
        ),
    ]
