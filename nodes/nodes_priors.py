"""Prior loaders: diffusion models from ComfyUI's model folders, wrapped in the library's prior interface.

Folders follow ComfyUI: diffusers layouts under models/diffusers (or models/animate124), single-file SD1.5
checkpoints under models/checkpoints, ControlNets under models/controlnet. Single files need a weightless config
folder (configs + tokenizer) to load offline, picked from models/configs or models/animate124.
Weights are loaded outside inference mode: score distillation backpropagates through the VAE encoder.
"""

from __future__ import annotations

from typing import Any

from a124_core.priors.base import PriorKind

from .glue import CATEGORY, PRIOR_TYPES, list_model_dirs, list_model_files, resolve_entry, training_mode

NONE = "none"
_PIPELINE_FOLDERS = ("diffusers", "animate124")
_PIPELINE_MARKER = ("model_index.json",)


def _pipelines() -> list[str]:
    return list_model_dirs(_PIPELINE_FOLDERS, _PIPELINE_MARKER)


def _config_dirs() -> list[str]:
    return [NONE] + list_model_dirs(("configs", "animate124"), _PIPELINE_MARKER)


def _check_entries(**entries: tuple[str, str]) -> bool | str:
    """VALIDATE_INPUTS helper: every (entry, what) must resolve; 'none' is allowed."""
    for entry, what in entries.values():
        if entry in (None, NONE):
            continue
        try:
            resolve_entry(entry, what)
        except (FileNotFoundError, ValueError) as err:
            return str(err)
    return True


def _optional_dir(entry: str) -> Any:
    return None if entry in (None, NONE) else resolve_entry(entry, "config folder")


class A124_LoadSD15Prior:
    """SD1.5 (diffusers folder or single-file checkpoint) as the 2D image-text prior."""

    DESCRIPTION = "Loads Stable Diffusion 1.5 as the 2D prior of the static stage and of textual inversion."
    CATEGORY = f"{CATEGORY}/priors"
    FUNCTION = "load"
    RETURN_TYPES = (PRIOR_TYPES[PriorKind.IMAGE_TEXT],)
    RETURN_NAMES = ("sd_prior",)
    OUTPUT_TOOLTIPS = ("An image-text prior (SD1.5) for the static stage and textual inversion.",)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "model": (
                    _pipelines() + list_model_files(("checkpoints",)),
                    {
                        "tooltip": "diffusers/<folder> (full SD1.5 diffusers layout) or "
                        "checkpoints/<file>.safetensors.",
                    },
                ),
                "config_dir": (
                    _config_dirs(),
                    {
                        "default": NONE,
                        "tooltip": "For a single-file checkpoint: a folder with the SD1.5 repo's configs and "
                        "tokenizer "
                        "(no weights), under models/configs or models/animate124. Unused for diffusers folders.",
                    },
                ),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model: str, config_dir: str) -> bool | str:
        if model.startswith("checkpoints/") and config_dir in (None, NONE):
            return f"{model} is a single-file checkpoint: pick a config_dir (SD1.5 configs + tokenizer, no weights)."
        return _check_entries(model=(model, "SD1.5 model"), config_dir=(config_dir, "config folder"))

    def load(self, model: str, config_dir: str):
        from a124_core.priors.sd import StableDiffusionPrior

        with training_mode():
            prior = StableDiffusionPrior.from_pretrained(
                resolve_entry(model, "SD1.5 model"), device="cpu", config_dir=_optional_dir(config_dir)
            )
        return (prior,)


class A124_LoadZero123Prior:
    """Zero123-XL / Stable Zero123 in a diffusers layout as the 3D image-pose prior."""

    DESCRIPTION = "Loads Zero123-XL (diffusers layout, cc_projection or clip_camera_projection) as the 3D prior."
    CATEGORY = f"{CATEGORY}/priors"
    FUNCTION = "load"
    RETURN_TYPES = (PRIOR_TYPES[PriorKind.IMAGE_POSE],)
    RETURN_NAMES = ("zero123_prior",)
    OUTPUT_TOOLTIPS = ("An image-pose prior for the static, coarse and refine stages.",)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": (_pipelines(), {"tooltip": "diffusers/<folder> holding a Zero123 pipeline."})}}

    @classmethod
    def VALIDATE_INPUTS(cls, model: str) -> bool | str:
        return _check_entries(model=(model, "Zero123 model"))

    def load(self, model: str):
        from a124_core.priors.zero123 import Zero123Prior

        with training_mode():
            return (Zero123Prior.from_pretrained(resolve_entry(model, "Zero123 model"), device="cpu"),)


class A124_LoadVideoPrior:
    """ModelScope text-to-video 1.7B or Zeroscope v2 as the video-text prior."""

    DESCRIPTION = (
        "Loads a text-to-video model (ModelScope 1.7B, Zeroscope v2) as the video prior of the dynamic stages."
    )
    CATEGORY = f"{CATEGORY}/priors"
    FUNCTION = "load"
    RETURN_TYPES = (PRIOR_TYPES[PriorKind.VIDEO_TEXT],)
    RETURN_NAMES = ("video_prior",)
    OUTPUT_TOOLTIPS = ("A video-text prior for the coarse and refine stages.",)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "model": (_pipelines(), {"tooltip": "diffusers/<folder> with a UNet3DConditionModel pipeline."}),
                "width": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 1024,
                        "step": 8,
                        "tooltip": "Frame width fed to the prior; 0 = the model's native size (Zeroscope v2: 144).",
                    },
                ),
                "height": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 1024,
                        "step": 8,
                        "tooltip": "Frame height; 0 = native (Zeroscope v2: 80). Set both or neither.",
                    },
                ),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model: str, width: int, height: int) -> bool | str:
        if (width == 0) != (height == 0):
            return f"Set both width and height (got {width} x {height}) or leave both at 0 for the native size."
        if width < 0 or height < 0 or width > 1024 or height > 1024:
            return f"width and height must lie in [0, 1024], got {width} x {height}."
        return _check_entries(model=(model, "text-to-video model"))

    def load(self, model: str, width: int, height: int):
        from a124_core.priors.video import TextToVideoPrior

        size = (int(height), int(width)) if width and height else None
        config = TextToVideoPrior.Config(image_size=size)
        with training_mode():
            return (
                TextToVideoPrior.from_pretrained(resolve_entry(model, "text-to-video model"), config, device="cpu"),
            )


class A124_LoadControlNetTilePrior:
    """ControlNet v1.1 Tile on an SD1.5 base as the image-control prior of the refine stage."""

    DESCRIPTION = "Loads ControlNet-Tile plus its SD1.5 base as the image-control prior of the refine stage."
    CATEGORY = f"{CATEGORY}/priors"
    FUNCTION = "load"
    RETURN_TYPES = (PRIOR_TYPES[PriorKind.IMAGE_CONTROL],)
    RETURN_NAMES = ("controlnet_prior",)
    OUTPUT_TOOLTIPS = ("An image-control prior for the refine stage.",)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        nets = list_model_dirs(("controlnet", "animate124"), ("config.json",)) + list_model_files(("controlnet",))
        return {
            "required": {
                "controlnet": (nets, {"tooltip": "controlnet/<folder> (diffusers) or controlnet/<file>.safetensors."}),
                "base": (_pipelines() + list_model_files(("checkpoints",)), {"tooltip": "The SD1.5 base model."}),
                "base_config_dir": (
                    _config_dirs(),
                    {"default": NONE, "tooltip": "Config folder when the base is a single file."},
                ),
                "controlnet_config_dir": (
                    _config_dirs() + list_model_dirs(("controlnet",), ("config.json",)),
                    {
                        "default": NONE,
                        "tooltip": "Folder with the ControlNet's config.json when it is a single file.",
                    },
                ),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(
        cls, controlnet: str, base: str, base_config_dir: str, controlnet_config_dir: str
    ) -> bool | str:
        if base.startswith("checkpoints/") and base_config_dir in (None, NONE):
            return f"The base {base} is a single file: pick base_config_dir (SD1.5 configs + tokenizer)."
        if controlnet.endswith(".safetensors") and controlnet_config_dir in (None, NONE):
            return f"The ControlNet {controlnet} is a single file: pick controlnet_config_dir (its config.json)."
        return _check_entries(
            controlnet=(controlnet, "ControlNet"),
            base=(base, "SD1.5 base"),
            base_config_dir=(base_config_dir, "config folder"),
            controlnet_config_dir=(controlnet_config_dir, "config folder"),
        )

    def load(self, controlnet: str, base: str, base_config_dir: str, controlnet_config_dir: str):
        from a124_core.priors.controlnet_tile import ControlNetTilePrior

        with training_mode():
            prior = ControlNetTilePrior.from_pretrained(
                resolve_entry(controlnet, "ControlNet"),
                resolve_entry(base, "SD1.5 base"),
                device="cpu",
                base_config_dir=_optional_dir(base_config_dir),
                controlnet_config_dir=_optional_dir(controlnet_config_dir),
            )
        return (prior,)


NODE_CLASS_MAPPINGS = {
    "A124_LoadSD15Prior": A124_LoadSD15Prior,
    "A124_LoadZero123Prior": A124_LoadZero123Prior,
    "A124_LoadVideoPrior": A124_LoadVideoPrior,
    "A124_LoadControlNetTilePrior": A124_LoadControlNetTilePrior,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "A124_LoadSD15Prior": "Load SD1.5 Prior (Animate124)",
    "A124_LoadZero123Prior": "Load Zero123 Prior (Animate124)",
    "A124_LoadVideoPrior": "Load Text-to-Video Prior (Animate124)",
    "A124_LoadControlNetTilePrior": "Load ControlNet-Tile Prior (Animate124)",
}
