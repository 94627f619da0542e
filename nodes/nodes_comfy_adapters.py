"""Adapters from ComfyUI's own loaders, so users can rewire models they already load in ComfyUI.

CheckpointLoaderSimple (SD1.5: MODEL + CLIP + VAE) -> the 2D prior; ControlNetLoader (CONTROL_NET) + that base ->
the ControlNet-Tile prior; ImageOnlyCheckpointLoader (Stable Zero123: MODEL + CLIP_VISION + VAE) -> the 3D prior.
The models stay ComfyUI's (its model management moves them to the GPU); see comfy_priors.py for the conversion.
"""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from a124_core.priors.base import PriorKind

from .glue import CATEGORY, PRIOR_TYPES, check_numbers


def _base_inputs() -> list:
    return [
        io.Model.Input("model", tooltip="SD1.5 MODEL from Load Checkpoint (CheckpointLoaderSimple)."),
        io.Clip.Input("clip", tooltip="Its CLIP (text encoder)."),
        io.Vae.Input("vae", tooltip="Its VAE; the encoder is differentiated by score distillation."),
    ]


class A124_SD15PriorFromComfy(io.ComfyNode):
    """MODEL + CLIP + VAE of an SD1.5 checkpoint as the 2D image-text prior."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_SD15PriorFromComfy",
            display_name="SD1.5 Prior from Checkpoint (Animate124)",
            category=f"{CATEGORY}/priors",
            description="Uses an SD1.5 checkpoint loaded by ComfyUI's Load Checkpoint as the 2D prior of the static "
            "stage. (Textual inversion needs Load SD1.5 Prior: it trains through the diffusers text encoder.)",
            inputs=[
                *_base_inputs(),
                io.Int.Input(
                    "image_size",
                    default=512,
                    min=32,
                    max=1024,
                    step=32,
                    tooltip="Render size fed to the VAE (SD1.5: 512).",
                ),
            ],
            outputs=[
                PRIOR_TYPES[PriorKind.IMAGE_TEXT].Output(
                    "sd_prior", display_name="sd_prior", tooltip="An image-text prior for the static stage."
                )
            ],
        )

    @classmethod
    def execute(cls, model, clip, vae, image_size) -> io.NodeOutput:
        from .comfy_priors import ComfySDPrior

        return io.NodeOutput(ComfySDPrior(model, clip, vae, int(image_size)))


class A124_ControlNetTilePriorFromComfy(io.ComfyNode):
    """CONTROL_NET (ControlNet v1.1 Tile) + an SD1.5 MODEL/CLIP/VAE as the image-control prior."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_ControlNetTilePriorFromComfy",
            display_name="ControlNet-Tile Prior from ControlNet (Animate124)",
            category=f"{CATEGORY}/priors",
            description="Uses ControlNet-Tile from ComfyUI's Load ControlNet Model on an SD1.5 base as the refine "
            "stage's prior.",
            inputs=[
                io.ControlNet.Input("control_net", tooltip="control_v11f1e_sd15_tile from Load ControlNet Model."),
                *_base_inputs(),
                io.Float.Input(
                    "strength", default=1.0, min=0.0, max=2.0, step=0.05, tooltip="Scale of the ControlNet residuals."
                ),
            ],
            outputs=[
                PRIOR_TYPES[PriorKind.IMAGE_CONTROL].Output(
                    "controlnet_prior",
                    display_name="controlnet_prior",
                    tooltip="An image-control prior for the refine stage.",
                )
            ],
        )

    @classmethod
    def validate_inputs(cls, strength=None) -> bool | str:
        return check_numbers(cls, strength=strength)

    @classmethod
    def execute(cls, control_net, model, clip, vae, strength) -> io.NodeOutput:
        from .comfy_priors import ComfyControlNetTilePrior

        return io.NodeOutput(ComfyControlNetTilePrior(control_net, model, clip, vae, strength=float(strength)))


class A124_Zero123PriorFromComfy(io.ComfyNode):
    """MODEL + CLIP_VISION + VAE of Stable Zero123 (ImageOnlyCheckpointLoader) as the 3D image-pose prior."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_Zero123PriorFromComfy",
            display_name="Stable Zero123 Prior from Checkpoint (Animate124)",
            category=f"{CATEGORY}/priors",
            description="Uses Stable Zero123 loaded by ComfyUI's Image Only Checkpoint Loader as the 3D prior.",
            inputs=[
                io.Model.Input("model", tooltip="Stable Zero123 MODEL from Image Only Checkpoint Loader."),
                io.ClipVision.Input("clip_vision", tooltip="Its CLIP vision tower."),
                io.Vae.Input("vae", tooltip="Its VAE."),
                io.Int.Input(
                    "image_size", default=256, min=32, max=1024, step=32, tooltip="Render size (Zero123: 256)."
                ),
            ],
            outputs=[
                PRIOR_TYPES[PriorKind.IMAGE_POSE].Output(
                    "zero123_prior",
                    display_name="zero123_prior",
                    tooltip="An image-pose prior for the static, coarse and refine stages.",
                )
            ],
        )

    @classmethod
    def execute(cls, model, clip_vision, vae, image_size) -> io.NodeOutput:
        from .comfy_priors import ComfyZero123Prior

        return io.NodeOutput(ComfyZero123Prior(model, clip_vision, vae, int(image_size)))
