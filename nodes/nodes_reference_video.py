"""Reference Video node: the user's video (an IMAGE batch or ComfyUI's VIDEO, + masks, + depth) -> the reference clip
the coarse stage trains video-to-4D on, and its first frame as the static stage's reference image."""

from __future__ import annotations

from comfy_api.v0_0_2 import io, ui

from .clip_sources import clip_inputs
from .glue import CATEGORY, NOT_WIRED, Reference, ReferenceClipWire, check_numbers


class A124_ReferenceVideo(io.ComfyNode):
    """IMAGE batch or VIDEO (+ MASK batch, + depth IMAGE batch) -> A124_REFERENCE_CLIP, its first frame, a preview."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_ReferenceVideo",
            display_name="Reference Video (Animate124)",
            category=f"{CATEGORY}/reference",
            description=(
                "Prepares a video of the object for video-to-4D: foreground per frame (masks, the video's alpha, or "
                "rembg), ONE crop for the whole clip around the union of the object's boxes (the camera does not "
                "follow the object), 256 px frames at times i / (N - 1). Wire the clip into the coarse stage and the "
                "first frame into the static stage. A clip longer than max_frames keeps every k-th frame."
            ),
            inputs=[
                io.Float.Input(
                    "border_ratio",
                    default=0.2,
                    min=0.0,
                    max=0.45,
                    step=0.01,
                    tooltip="Margin around the union of the object's boxes, as a fraction of the frame (SPEC 8: 0.2).",
                ),
                io.Int.Input(
                    "max_frames",
                    default=64,
                    min=2,
                    max=1024,
                    tooltip="Frame budget (the presets' budgets: paper 64, fast 32, smoke 8). A longer clip keeps "
                    "every k-th frame, k = ceil(frames / max_frames): the whole motion at a lower rate.",
                ),
                *clip_inputs(),
                io.Image.Input(
                    "depth",
                    optional=True,
                    tooltip="One depth map per frame, brighter = nearer (e.g. from a depth node): turns the "
                    "per-frame depth loss on.",
                ),
            ],
            outputs=[
                ReferenceClipWire.Output(
                    "clip", display_name="clip", tooltip="The reference clip for the coarse stage's reference input."
                ),
                Reference.Output(
                    "first_frame",
                    display_name="first_frame",
                    tooltip="The clip's first frame with the clip's crop: the static stage's reference image.",
                ),
                io.Image.Output(
                    "preview", display_name="preview", tooltip="The recentred frames over a checkerboard (256 px)."
                ),
                io.String.Output(
                    "note",
                    display_name="note",
                    tooltip="What the clip holds: frames, rate, where the foreground came from, what the frame "
                    "budget kept.",
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, border_ratio=None, max_frames=None, images=NOT_WIRED, video=NOT_WIRED) -> bool | str:
        if (images is NOT_WIRED) and (video is NOT_WIRED):
            return "Reference Video needs a clip: wire an IMAGE batch into 'images' or a VIDEO into 'video'."
        if (images is not NOT_WIRED) and (video is not NOT_WIRED):
            return "Reference Video takes one clip: wire 'images' or 'video', not both."
        return check_numbers(cls, border_ratio=border_ratio, max_frames=max_frames)

    @classmethod
    def execute(
        cls, border_ratio, max_frames, images=None, video=None, mask=None, depth=None, mask_is_foreground=False
    ) -> io.NodeOutput:
        from a124_core.reference import ClipConfig, ReferenceConfig, build_clip, load_clip_video

        from .clip_sources import clip_note, clip_source, rembg_dirs

        source = clip_source(images, video, mask, depth, mask_is_foreground)
        config = ClipConfig(reference=ReferenceConfig(border_ratio=float(border_ratio)), max_frames=int(max_frames))
        if source.file is not None:
            clip = load_clip_video(source.file, rembg_dirs=rembg_dirs(), config=config)
        else:
            clip = build_clip(
                source.frames, source.masks, source.depth, fps=source.fps, rembg_dirs=rembg_dirs(), config=config
            )
        note = clip_note(clip)
        return io.NodeOutput(clip, clip.first_reference(), clip.preview(), note, ui=ui.PreviewText(note))
