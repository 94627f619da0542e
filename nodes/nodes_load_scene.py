"""Load Static Scene / Load Dynamic Scene: a scene file under output/animate124 or models/animate124 as the wire type
of its kind, refused at validation when the file holds the other kind."""

from __future__ import annotations

from pathlib import Path

import torch
from comfy_api.v0_0_2 import io

from .glue import CATEGORY, SceneDynamic, SceneStatic, folder_paths, resolve_entry
from .output_files import OUTPUT_SUBFOLDER


def scene_header(path: Path) -> dict | None:
    """The JSON metadata of a scene file (cheap: reads the header only), None for other files."""
    from a124_core.training.scene import read_header

    try:
        return read_header(path) or None
    except (OSError, ValueError):
        return None


def scene_files() -> list[str]:
    """Scene files under output/animate124 ("output/...") and models/animate124 ("animate124/...")."""
    roots = [("output", Path(folder_paths().get_output_directory(), OUTPUT_SUBFOLDER))]
    roots += [("animate124", Path(p)) for p in folder_paths().get_folder_paths("animate124")]
    found = []
    for label, root in roots:
        if root.is_dir():
            found += [
                f"{label}/{p.relative_to(root).as_posix()}"
                for p in sorted(root.rglob("*.safetensors"))
                if scene_header(p) is not None
            ]
    return sorted(dict.fromkeys(found))


def resolve_scene_file(entry: str) -> Path:
    label, _, rel = entry.partition("/")
    if label == "output":
        path = Path(folder_paths().get_output_directory(), OUTPUT_SUBFOLDER, rel)
        if path.is_file():
            return path
        raise FileNotFoundError(f"Scene file {path} does not exist; save one with Save Scene or pick another.")
    return resolve_entry(entry, "scene file")


def check_scene_file(scene_file: str | None, dynamic: bool) -> bool | str:
    """validate_inputs part: the file exists, is a scene, and holds the kind the node loads."""
    if scene_file is None:
        return True
    try:
        path = resolve_scene_file(scene_file)
    except (FileNotFoundError, ValueError) as err:
        return str(err)
    meta = scene_header(path)
    if meta is None:
        return f"{path} is not an Animate124 scene file."
    if bool(meta.get("dynamic")) != dynamic:
        kind, other = ("dynamic", "Load Dynamic Scene") if meta.get("dynamic") else ("static", "Load Static Scene")
        return f"{scene_file} holds a {kind} scene (stage {meta.get('stage')}); load it with {other}."
    return True


def load_scene(scene_file: str) -> io.NodeOutput:
    from a124_core.training.scene import Scene

    with torch.inference_mode(False):
        return io.NodeOutput(Scene.load(resolve_scene_file(scene_file)))


def _file_input() -> io.Combo.Input:
    return io.Combo.Input(
        "scene_file",
        options=scene_files(),
        tooltip="A scene from Save Scene or a stage checkpoint (output/animate124), or one in models/animate124.",
    )


class A124_LoadStaticScene(io.ComfyNode):
    """A static scene file (static stage) -> A124_SCENE_STATIC."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_LoadStaticScene",
            display_name="Load Static Scene (Animate124)",
            category=f"{CATEGORY}/outputs",
            description="Loads a static scene (the static stage's result) to render it or to start the coarse stage.",
            inputs=[_file_input()],
            outputs=[SceneStatic.Output("scene", display_name="scene", tooltip="The static scene.")],
        )

    @classmethod
    def validate_inputs(cls, scene_file=None) -> bool | str:
        return check_scene_file(scene_file, dynamic=False)

    @classmethod
    def execute(cls, scene_file: str) -> io.NodeOutput:
        return load_scene(scene_file)


class A124_LoadDynamicScene(io.ComfyNode):
    """A dynamic scene file (coarse or refine stage) -> A124_SCENE_DYNAMIC."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_LoadDynamicScene",
            display_name="Load Dynamic Scene (Animate124)",
            category=f"{CATEGORY}/outputs",
            description="Loads a dynamic (4D) scene (coarse or refine result) to render it or to refine it.",
            inputs=[_file_input()],
            outputs=[SceneDynamic.Output("scene", display_name="scene", tooltip="The dynamic scene.")],
        )

    @classmethod
    def validate_inputs(cls, scene_file=None) -> bool | str:
        return check_scene_file(scene_file, dynamic=True)

    @classmethod
    def execute(cls, scene_file: str) -> io.NodeOutput:
        return load_scene(scene_file)
