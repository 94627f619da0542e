"""A mesh animated from a video of it (issue 26): the mesh's front view (what an image-to-video model is given) and
Animate Mesh from Video (the model's clip -> the same mesh with a morph target per frame)."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from a124_core.priors.base import PriorKind

from .clip_sources import clip_inputs
from .glue import CATEGORY, NOT_WIRED, PRIOR_TYPES
from .mesh_run import (
    MeshRunSettings,
    animate_and_write,
    check_mesh_inputs,
    file_inputs,
    input_mesh_path,
    mesh_input,
    mesh_outputs,
    model_file_input,
    training_widgets,
)

MODEL_FILE_TOOLTIP = (
    "The mesh in ComfyUI/input/3d (.glb, .gltf, .obj, .ply, .stl) the video shows; ignored when a MESH is wired."
)


def _asset(model_file: str, mesh) -> object:
    from a124_core.meshes.animate import load_input

    return load_input(mesh if mesh is not None else input_mesh_path(model_file))


class A124_MeshFrontView(io.ComfyNode):
    """The mesh's exact front render: the image to animate with an image-to-video model."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_MeshFrontView",
            display_name="Mesh Front View (Animate124)",
            category=f"{CATEGORY}/reference",
            description="Renders the mesh from the reference camera (its +z front, 512 px on white), exactly as "
            "Animate Mesh from Video places it. Hand this image to an image-to-video model (Wan, LTX, Hunyuan "
            "Video) and wire the clip it makes into Animate Mesh from Video. No model, no training.",
            inputs=[model_file_input(MODEL_FILE_TOOLTIP), mesh_input()],
            outputs=[
                io.Image.Output("image", display_name="image", tooltip="The front render [1, 512, 512, 3]."),
            ],
        )

    @classmethod
    def validate_inputs(cls, model_file=None, mesh=NOT_WIRED) -> bool | str:
        return check_mesh_inputs(cls, model_file, mesh)

    @classmethod
    def execute(cls, model_file, mesh=None) -> io.NodeOutput:
        from a124_core.meshes.from_video import front_view

        return io.NodeOutput(front_view(_asset(model_file, mesh)).rgb.permute(1, 2, 0)[None].contiguous())


class A124_AnimateMeshFromVideo(io.ComfyNode):
    """The mesh + a video of its front view in motion -> the same mesh with a morph target per frame."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_AnimateMeshFromVideo",
            display_name="Animate Mesh from Video (Animate124)",
            category=f"{CATEGORY}/training",
            description="Animates a mesh with the motion of a video of it (e.g. an image-to-video model's clip of "
            "Mesh Front View's image): the clip is cropped so its first frame lands on the mesh's front render, the "
            "canonical field is fitted to the mesh, a deformation field learns every frame at its time (+ Zero123 "
            "conditioned on each view's frame, + ARAP on the mesh's edges), and the SAME mesh is written with one "
            "morph target per frame to output/animate124/meshes/. Wire model_file into Preview 3D & Animation. The "
            "clip's frame budget is the preset's (paper 64, fast 32, smoke 8 frames).",
            is_output_node=True,
            inputs=[
                model_file_input(MODEL_FILE_TOOLTIP),
                *training_widgets(),
                *clip_inputs(),
                mesh_input(),
                PRIOR_TYPES[PriorKind.IMAGE_POSE].Input(
                    "zero123_prior", optional=True, tooltip="Zero123, conditioned on the frame of each view's time."
                ),
                PRIOR_TYPES[PriorKind.VIDEO_TEXT].Input(
                    "video_prior", optional=True, tooltip="Optional text-to-video SDS under 'prompt' (off by default)."
                ),
                io.String.Input(
                    "prompt", default="", optional=True, tooltip="The motion prompt, used only by the video prior."
                ),
                *file_inputs("animate124_mesh_video", "mesh_from_video"),
            ],
            outputs=mesh_outputs(),
        )

    @classmethod
    def validate_inputs(
        cls, model_file=None, mesh=NOT_WIRED, fps=None, arap_weight=None, filename_prefix=None,
        images=NOT_WIRED, video=NOT_WIRED, video_prior=NOT_WIRED, prompt=None, run_name=None,
    ) -> bool | str:  # fmt: skip
        if (images is NOT_WIRED) == (video is NOT_WIRED):
            return "Animate Mesh from Video takes one clip of the mesh: wire 'images' or 'video' (not both)."
        if video_prior is not NOT_WIRED and prompt is not None and not prompt.strip():
            return "The video prior needs the motion prompt: say what the model does, e.g. 'a robot is waving'."
        numbers = dict(fps=fps, arap_weight=arap_weight)
        return check_mesh_inputs(cls, model_file, mesh, filename_prefix, prompt, run_name, **numbers)

    @classmethod
    def execute(
        cls,
        model_file,
        preset,
        steps,
        training_seed,
        frames,
        fps,
        arap_weight,
        images=None,
        video=None,
        mask=None,
        mask_is_foreground=False,
        mesh=None,
        zero123_prior=None,
        video_prior=None,
        prompt="",
        run_name="animate124_mesh_video",
        filename_prefix="mesh_from_video",
    ) -> io.NodeOutput:
        from a124_core.meshes.animate import MESH_REPRESENTATION
        from a124_core.meshes.from_video import mesh_clip
        from a124_core.pipeline.video import FRAME_BUDGET
        from a124_core.presets import preset as get_preset
        from a124_core.reference import ClipConfig
        from a124_core.training.coarse_stage import DynamicPriors

        from .clip_sources import clip_note, clip_source, rembg_dirs

        source = clip_source(images, video, mask, None, mask_is_foreground)
        asset = _asset(model_file, mesh)
        chosen = get_preset(preset, MESH_REPRESENTATION).with_seed(int(training_seed))
        config = ClipConfig(max_frames=FRAME_BUDGET[chosen.name])
        clip = mesh_clip(asset, **source.clip_kwargs(), config=config, rembg_dirs=rembg_dirs())
        settings = MeshRunSettings(chosen, int(steps), int(frames), float(fps), float(arap_weight), run_name)
        priors = DynamicPriors(video_prior, zero123_prior)
        result = animate_and_write(asset, settings, priors, prompt, "", filename_prefix, clip, (clip_note(clip),))
        return io.NodeOutput(*result.outputs, ui=result.text)
