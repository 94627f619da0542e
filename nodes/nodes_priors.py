"""Prior loaders: diffusion models from ComfyUI's model folders, wrapped in the library's prior interface.

Folders follow ComfyUI: diffusers layouts under models/diffusers (or models/animate124), single-file SD1.5
checkpoints under models/checkpoints, ControlNets under models/controlnet. Single files need a weightless config
folder (configs + tokenizer) to load offline, picked from models/configs or models/animate124.
Weights are loaded outside inference mode: score distillation backpropagates through the VAE encoder.
"""

from __future__ import annotations

from typing import Any

from comfy_api.v0_0_2 import io

from a124_core.priors.base import PriorKind

from .glue import (
    CATEGORY,
    PRIOR_TYPES,
    check_entries,
    check_numbers,
    first_error,
    list_model_dirs,
    list_model_files,
    resolve_entry,
    training_mode,
)

NONE = "none"
_PIPELINE_FOLDERS = ("diffusers", "animate124")
_PIPELINE_MARKER = ("model_index.json",)


def _pipelines() -> list[str]:
    return list_model_dirs(_PIPELINE_FOLDERS, _PIPELINE_MARKER)


def _config_dirs() -> list[str]:
    return [NONE] + list_model_dirs(("configs", "animate124"), _PIPELINE_MARKER)


def _optional_dir(entry: str) -> Any:
    return None if entry in (None, NONE) else resolve_entry(entry, "config folder")


class A124_LoadSD15Prior(io.ComfyNode):
    """SD1.5 (diffusers folder or single-file checkpoint) as the 2D image-text prior."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_LoadSD15Prior",
            display_name="Load SD1.5 Prior (Animate124)",
            category=f"{CATEGORY}/priors",
            description="Loads Stable Diffusion 1.5 as the 2D prior of the static stage and of textual inversion.",
            inputs=[
                io.Combo.Input(
                    "model",
                    options=_pipelines() + list_model_files(("checkpoints",)),
                    tooltip="diffusers/<folder> (full SD1.5 diffusers layout) or checkpoints/<file>.safetensors.",
                ),
                io.Combo.Input(
                    "config_dir",
                    options=_config_dirs(),
                    default=NONE,
                    tooltip="For a single-file checkpoint: a folder with the SD1.5 repo's configs and tokenizer (no "
                    "weights), under models/configs or models/animate124. Unused for diffusers folders.",
                ),
            ],
            outputs=[
                PRIOR_TYPES[PriorKind.IMAGE_TEXT].Output(
                    "sd_prior",
                    display_name="sd_prior",
                    tooltip="An image-text prior (SD1.5) for the static stage and textual inversion.",
                )
            ],
        )

    @classmethod
    def validate_inputs(cls, model=None, config_dir=None) -> bool | str:
        if model and model.startswith("checkpoints/") and config_dir in (None, NONE):
            return f"{model} is a single-file checkpoint: pick a config_dir (SD1.5 configs + tokenizer, no weights)."
        return check_entries(model=(model, "SD1.5 model"), config_dir=(config_dir, "config folder"))

    @classmethod
    def execute(cls, model: str, config_dir: str) -> io.NodeOutput:
        from a124_core.priors.sd import StableDiffusionPrior

        with training_mode():
            prior = StableDiffusionPrior.from_pretrained(
                resolve_entry(model, "SD1.5 model"), device="cpu", config_dir=_optional_dir(config_dir)
            )
        return io.NodeOutput(prior)


class A124_LoadZero123Prior(io.ComfyNode):
    """Zero123-XL / Stable Zero123 in a diffusers layout as the 3D image-pose prior."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_LoadZero123Prior",
            display_name="Load Zero123 Prior (Animate124)",
            category=f"{CATEGORY}/priors",
            description="Loads Zero123-XL (diffusers layout, cc_projection or clip_camera_projection) as the 3D "
            "prior.",
            inputs=[
                io.Combo.Input("model", options=_pipelines(), tooltip="diffusers/<folder> holding a Zero123 pipeline.")
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
    def validate_inputs(cls, model=None) -> bool | str:
        return check_entries(model=(model, "Zero123 model"))

    @classmethod
    def execute(cls, model: str) -> io.NodeOutput:
        from a124_core.priors.zero123 import Zero123Prior

        with training_mode():
            return io.NodeOutput(Zero123Prior.from_pretrained(resolve_entry(model, "Zero123 model"), device="cpu"))


class A124_LoadVideoPrior(io.ComfyNode):
    """ModelScope text-to-video 1.7B or Zeroscope v2 as the video-text prior."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        size = {"default": 0, "min": 0, "max": 1024, "step": 8}
        return io.Schema(
            node_id="A124_LoadVideoPrior",
            display_name="Load Text-to-Video Prior (Animate124)",
            category=f"{CATEGORY}/priors",
            description="Loads a text-to-video model (ModelScope 1.7B, Zeroscope v2) as the video prior of the "
            "dynamic stages.",
            inputs=[
                io.Combo.Input(
                    "model", options=_pipelines(), tooltip="diffusers/<folder> with a UNet3DConditionModel pipeline."
                ),
                io.Int.Input(
                    "width",
                    **size,
                    tooltip="Frame width fed to the prior; 0 = the model's native size (Zeroscope v2: 144).",
                ),
                io.Int.Input(
                    "height", **size, tooltip="Frame height; 0 = native (Zeroscope v2: 80). Set both or neither."
                ),
            ],
            outputs=[
                PRIOR_TYPES[PriorKind.VIDEO_TEXT].Output(
                    "video_prior",
                    display_name="video_prior",
                    tooltip="A video-text prior for the coarse and refine stages.",
                )
            ],
        )

    @classmethod
    def validate_inputs(cls, model=None, width=None, height=None) -> bool | str:
        if width is not None and height is not None and (width == 0) != (height == 0):
            return f"Set both width and height (got {width} x {height}) or leave both at 0 for the native size."
        return first_error(
            check_numbers(cls, width=width, height=height), check_entries(model=(model, "text-to-video model"))
        )

    @classmethod
    def execute(cls, model: str, width: int, height: int) -> io.NodeOutput:
        from a124_core.priors.video import TextToVideoPrior

        size = (int(height), int(width)) if width and height else None
        config = TextToVideoPrior.Config(image_size=size)
        with training_mode():
            prior = TextToVideoPrior.from_pretrained(resolve_entry(model, "text-to-video model"), config, device="cpu")
        return io.NodeOutput(prior)


class A124_LoadControlNetTilePrior(io.ComfyNode):
    """ControlNet v1.1 Tile on an SD1.5 base as the image-control prior of the refine stage."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        nets = list_model_dirs(("controlnet", "animate124"), ("config.json",)) + list_model_files(("controlnet",))
        return io.Schema(
            node_id="A124_LoadControlNetTilePrior",
            display_name="Load ControlNet-Tile Prior (Animate124)",
            category=f"{CATEGORY}/priors",
            description="Loads ControlNet-Tile plus its SD1.5 base as the image-control prior of the refine stage.",
            inputs=[
                io.Combo.Input(
                    "controlnet",
                    options=nets,
                    tooltip="controlnet/<folder> (diffusers) or controlnet/<file>.safetensors.",
                ),
                io.Combo.Input(
                    "base", options=_pipelines() + list_model_files(("checkpoints",)), tooltip="The SD1.5 base model."
                ),
                io.Combo.Input(
                    "base_config_dir",
                    options=_config_dirs(),
                    default=NONE,
                    tooltip="Config folder when the base is a single file.",
                ),
                io.Combo.Input(
                    "controlnet_config_dir",
                    options=_config_dirs() + list_model_dirs(("controlnet",), ("config.json",)),
                    default=NONE,
                    tooltip="Folder with the ControlNet's config.json when it is a single file.",
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
    def validate_inputs(cls, controlnet=None, base=None, base_config_dir=None, controlnet_config_dir=None):
        if base and base.startswith("checkpoints/") and base_config_dir in (None, NONE):
            return f"The base {base} is a single file: pick base_config_dir (SD1.5 configs + tokenizer)."
        if controlnet and controlnet.endswith(".safetensors") and controlnet_config_dir in (None, NONE):
            return f"The ControlNet {controlnet} is a single file: pick controlnet_config_dir (its config.json)."
        return check_entries(
            controlnet=(controlnet, "ControlNet"),
            base=(base, "SD1.5 base"),
            base_config_dir=(base_config_dir, "config folder"),
            controlnet_config_dir=(controlnet_config_dir, "config folder"),
        )

    @classmethod
    def execute(cls, controlnet: str, base: str, base_config_dir: str, controlnet_config_dir: str) -> io.NodeOutput:
        from a124_core.priors.controlnet_tile import ControlNetTilePrior

        with training_mode():
            prior = ControlNetTilePrior.from_pretrained(
                resolve_entry(controlnet, "ControlNet"),
                resolve_entry(base, "SD1.5 base"),
                device="cpu",
                base_config_dir=_optional_dir(base_config_dir),
                controlnet_config_dir=_optional_dir(controlnet_config_dir),
            )
        return io.NodeOutput(prior)
