"""Save Scene: a trained scene as a file (safetensors + JSON header) that Load Scene and the CLI read back."""

from __future__ import annotations

from comfy_api.v0_0_2 import io, ui

from .glue import ANY_SCENE, CATEGORY, scene_input
from .output_files import check_prefix, next_numbered_path, output_dir


class A124_SaveScene(io.ComfyNode):
    """Writes output/animate124/scenes/<prefix>_<stage>_<n>.safetensors."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_SaveScene",
            display_name="Save Scene (Animate124)",
            category=f"{CATEGORY}/outputs",
            description="Saves a trained scene to output/animate124/scenes/<prefix>_<stage>_<n>.safetensors.",
            is_output_node=True,
            inputs=[
                scene_input("scene", ANY_SCENE, "The scene to save."),
                io.String.Input("filename_prefix", default="animate124", tooltip="File name prefix."),
            ],
            outputs=[io.String.Output("path", display_name="path", tooltip="The file written.")],
        )

    @classmethod
    def validate_inputs(cls, filename_prefix=None) -> bool | str:
        return True if filename_prefix is None else check_prefix(filename_prefix)

    @classmethod
    def execute(cls, scene, filename_prefix) -> io.NodeOutput:
        path = scene.save(next_numbered_path(output_dir("scenes"), f"{filename_prefix}_{scene.stage}", ".safetensors"))
        return io.NodeOutput(str(path), ui=ui.PreviewText(str(path)))
