"""Adapters from ComfyUI's own loaders, so users can rewire models they already load in ComfyUI.

CheckpointLoaderSimple (SD1.5: MODEL + CLIP + VAE) -> the 2D prior; ControlNetLoader (CONTROL_NET) + that base ->
the ControlNet-Tile prior; ImageOnlyCheckpointLoader (Stable Zero123: MODEL + CLIP_VISION + VAE) -> the 3D prior.
The models stay ComfyUI's (its model management moves them to the GPU); see comfy_priors.py for the conversion.
"""

from __future__ import annotations

from typing import Any

from a124_core.priors.base import PriorKind

from .glue import CATEGORY, PRIOR_TYPES


def _base_inputs() -> dict[str, Any]:
    return {
        "model": ("MODEL", {"tooltip": "SD1.5 MODEL from Load Checkpoint (CheckpointLoaderSimple)."}),
        "clip": ("CLIP", {"tooltip": "Its CLIP (text encoder)."}),
        "vae": ("VAE", {"tooltip": "Its VAE; the encoder is differentiated by score distillation."}),
    }


class A124_SD15PriorFromComfy:
    """MODEL + CLIP + VAE of an SD1.5 checkpoint as the 2D image-text prior."""

    DESCRIPTION = (
        "Uses an SD1.5 checkpoint loaded by ComfyUI's Load Checkpoint as the 2D prior of the static stage. "
        "(Textual inversion needs Load SD1.5 Prior: it trains through the diffusers text encoder.)"
    )
    CATEGORY = f"{CATEGORY}/priors"
    FUNCTION = "adapt"
    RETURN_TYPES = (PRIOR_TYPES[PriorKind.IMAGE_TEXT],)
    RETURN_NAMES = ("sd_prior",)
    OUTPUT_TOOLTIPS = ("An image-text prior for the static stage.",)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                **_base_inputs(),
                "image_size": (
                    "INT",
                    {
                        "default": 512,
                        "min": 32,
                        "max": 1024,
                        "step": 32,
                        "tooltip": "Render size fed to the VAE (SD1.5: 512).",
                    },
                ),
            }
        }

    def adapt(self, model, clip, vae, image_size):
        from .comfy_priors import ComfySDPrior

        return (ComfySDPrior(model, clip, vae, int(image_size)),)


class A124_ControlNetTilePriorFromComfy:
    """CONTROL_NET (ControlNet v1.1 Tile) + an SD1.5 MODEL/CLIP/VAE as the image-control prior."""

    DESCRIPTION = (
        "Uses ControlNet-Tile from ComfyUI's Load ControlNet Model on an SD1.5 base as the refine stage's prior."
    )
    CATEGORY = f"{CATEGORY}/priors"
    FUNCTION = "adapt"
    RETURN_TYPES = (PRIOR_TYPES[PriorKind.IMAGE_CONTROL],)
    RETURN_NAMES = ("controlnet_prior",)
    OUTPUT_TOOLTIPS = ("An image-control prior for the refine stage.",)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "control_net": ("CONTROL_NET", {"tooltip": "control_v11f1e_sd15_tile from Load ControlNet Model."}),
                **_base_inputs(),
                "strength": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.0,
                        "max": 2.0,
                        "step": 0.05,
                        "tooltip": "Scale of the ControlNet residuals.",
                    },
                ),
            }
        }

    def adapt(self, control_net, model, clip, vae, strength):
        from .comfy_priors import ComfyControlNetTilePrior

        return (ComfyControlNetTilePrior(control_net, model, clip, vae, strength=float(strength)),)


class A124_Zero123PriorFromComfy:
    """MODEL + CLIP_VISION + VAE of Stable Zero123 (ImageOnlyCheckpointLoader) as the 3D image-pose prior."""

    DESCRIPTION = "Uses Stable Zero123 loaded by ComfyUI's Image Only Checkpoint Loader as the 3D prior."
    CATEGORY = f"{CATEGORY}/priors"
    FUNCTION = "adapt"
    RETURN_TYPES = (PRIOR_TYPES[PriorKind.IMAGE_POSE],)
    RETURN_NAMES = ("zero123_prior",)
    OUTPUT_TOOLTIPS = ("An image-pose prior for the static, coarse and refine stages.",)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "Stable Zero123 MODEL from Image Only Checkpoint Loader."}),
                "clip_vision": ("CLIP_VISION", {"tooltip": "Its CLIP vision tower."}),
                "vae": ("VAE", {"tooltip": "Its VAE."}),
                "image_size": (
                    "INT",
                    {"default": 256, "min": 32, "max": 1024, "step": 32, "tooltip": "Render size (Zero123: 256)."},
                ),
            }
        }

    def adapt(self, model, clip_vision, vae, image_size):
        from .comfy_priors import ComfyZero123Prior

        return (ComfyZero123Prior(model, clip_vision, vae, int(image_size)),)


NODE_CLASS_MAPPINGS = {
    "A124_SD15PriorFromComfy": A124_SD15PriorFromComfy,
    "A124_ControlNetTilePriorFromComfy": A124_ControlNetTilePriorFromComfy,
    "A124_Zero123PriorFromComfy": A124_Zero123PriorFromComfy,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "A124_SD15PriorFromComfy": "SD1.5 Prior from Checkpoint (Animate124)",
    "A124_ControlNetTilePriorFromComfy": "ControlNet-Tile Prior from ControlNet (Animate124)",
    "A124_Zero123PriorFromComfy": "Stable Zero123 Prior from Checkpoint (Animate124)",
}
