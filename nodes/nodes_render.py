"""Orbit Render: a scene as an IMAGE batch, ComfyUI's VIDEO and an mp4 with a UI preview."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from .glue import ANY_SCENE, CATEGORY, check_numbers, first_error, scene_input
from .output_files import check_prefix, next_numbered_path, output_dir, video_preview
from .scene_render import CHANNELS, RENDER_MODES, comfy_video, render_orbit


class A124_OrbitRender(io.ComfyNode):
    """Renders a scene to an IMAGE batch, a ComfyUI VIDEO and an mp4 in the output folder."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_OrbitRender",
            display_name="Orbit Render (Animate124)",
            category=f"{CATEGORY}/outputs",
            description="Renders the scene: the SPEC test orbit (views x frames), the reference camera over time, one "
            "turn while animating, or all orbit views tiled into one video. Wire VIDEO into Save Video, IMAGE into "
            "any image node.",
            is_output_node=True,
            inputs=[
                scene_input("scene", ANY_SCENE, "A static or dynamic scene (stage output or Load Scene)."),
                io.Combo.Input(
                    "mode",
                    options=list(RENDER_MODES),
                    default="test orbit",
                    tooltip="Which cameras and times to render.",
                ),
                io.Combo.Input(
                    "channel",
                    options=list(CHANNELS),
                    default="albedo",
                    tooltip="What to render: colour, shaded, depth, normals or mask.",
                ),
                io.Int.Input("views", default=10, min=1, max=64, tooltip="Orbit views (SPEC 10: 10)."),
                io.Int.Input(
                    "frames", default=64, min=1, max=512, tooltip="Frames per view (SPEC 10: 64); 1 for static scenes."
                ),
                io.Int.Input(
                    "resolution", default=400, min=16, max=2048, step=8, tooltip="Square render size (SPEC 10: 400)."
                ),
                io.Float.Input(
                    "fps", default=25.0, min=1.0, max=120.0, tooltip="Frame rate of the mp4 and the VIDEO."
                ),
                io.Boolean.Input(
                    "save_mp4", default=True, tooltip="Write an mp4 to output/animate124/videos and preview it."
                ),
                io.String.Input("filename_prefix", default="animate124", tooltip="File name prefix of the mp4."),
            ],
            # VIDEO comes last so links of workflows saved before it existed keep their slots.
            outputs=[
                io.Image.Output("images", display_name="images", tooltip="Rendered frames [N, H, W, 3]."),
                io.String.Output(
                    "video_path",
                    display_name="video_path",
                    tooltip="The mp4 file written (empty when save_mp4 is off).",
                ),
                io.Video.Output(
                    "video",
                    display_name="video",
                    tooltip="The frames as ComfyUI's VIDEO at `fps` (Save Video, Get Video Components).",
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, fps=None, filename_prefix=None) -> bool | str:
        return first_error(
            check_numbers(cls, fps=fps), True if filename_prefix is None else check_prefix(filename_prefix)
        )

    @classmethod
    def execute(cls, scene, mode, channel, views, frames, resolution, fps, save_mp4, filename_prefix) -> io.NodeOutput:
        from a124_core.outputs.export import write_video

        images = render_orbit(scene, mode, channel, int(views), int(frames), int(resolution))
        video = comfy_video(images, fps)
        if not save_mp4:
            return io.NodeOutput(images, "", video)
        stem = f"{filename_prefix}_{mode.replace(' ', '-')}_{channel}"
        path = next_numbered_path(output_dir("videos"), stem, ".mp4")
        write_video(images, path, fps=float(fps))
        return io.NodeOutput(images, str(path), video, ui=video_preview([path]))
