"""Reference node: one image (+ optional mask and depth) -> the recentred reference every stage consumes."""

from __future__ import annotations

from typing import Any

from a124_core.reference import ReferenceConfig, build_reference

from .glue import CATEGORY, REFERENCE, folder_paths, list_model_dirs, resolve_entry

NONE = "none"
_DEPTH_FOLDERS = ("animate124", "depth_models")


def _depth_models() -> list[str]:
    return [NONE] + list_model_dirs(_DEPTH_FOLDERS, ("preprocessor_config.json",))


class A124_Reference:
    """IMAGE (+ MASK, + depth IMAGE or a depth model) -> A124_REFERENCE and a preview."""

    DESCRIPTION = (
        "Prepares the input image: foreground from its alpha, a mask or rembg, recentred so the object spans a fixed "
        "fraction of the frame, resized to 256 (and 512 for textual inversion), with an optional depth map."
    )
    CATEGORY = f"{CATEGORY}/reference"
    FUNCTION = "build"
    RETURN_TYPES = (REFERENCE, "IMAGE", "MASK")
    RETURN_NAMES = ("reference", "preview", "mask")
    OUTPUT_TOOLTIPS = (
        "The reference for the textual-inversion and stage nodes.",
        "The recentred object over a checkerboard (256 x 256).",
        "The recentred foreground mask (1 = object).",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The object to animate (first image of the batch is used)."}),
                "border_ratio": (
                    "FLOAT",
                    {
                        "default": 0.2,
                        "min": 0.0,
                        "max": 0.45,
                        "step": 0.01,
                        "tooltip": "Margin around the object as a fraction of the frame (SPEC 8: 0.2).",
                    },
                ),
            },
            "optional": {
                "mask": (
                    "MASK",
                    {
                        "tooltip": "Foreground mask as LoadImage gives it (1 - alpha: 1 = background); it is inverted "
                        "here. Used only when the image has no alpha; an all-zero mask (image without alpha) "
                        "is ignored.",
                    },
                ),
                "depth": (
                    "IMAGE",
                    {"tooltip": "Depth map aligned with the image, brighter = nearer (e.g. from a depth node)."},
                ),
                "depth_model": (
                    _depth_models(),
                    {
                        "default": NONE,
                        "tooltip": "A transformers depth model folder (DPT / Depth Anything) under "
                        "models/animate124 or "
                        "models/depth_models; ignored when a depth image is wired.",
                    },
                ),
                "mask_is_foreground": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Set when the wired mask already has 1 = object (e.g. from a segmentation node).",
                    },
                ),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, depth_model: str = NONE) -> bool | str:
        if depth_model in (None, NONE):
            return True
        try:
            resolve_entry(depth_model, "depth model")
        except (FileNotFoundError, ValueError) as err:
            return str(err)
        return True

    def build(self, image, border_ratio, mask=None, depth=None, depth_model=NONE, mask_is_foreground=False):
        from .glue import torch_device

        img = image[0].clone()
        fg = None if mask is None else (mask[0] if mask.dim() == 3 else mask).clone()
        if fg is not None and not mask_is_foreground and not bool(fg.any()):
            fg = None  # LoadImage's mask of an image without alpha: all zeros (64 x 64), i.e. no mask
        if fg is not None and not mask_is_foreground:
            fg = 1.0 - fg  # ComfyUI's LoadImage MASK is 1 - alpha; the library wants 1 = foreground
        depth_img = None if depth is None else depth[0].clone()
        model = None
        if depth_img is None and depth_model not in (None, NONE):
            model = resolve_entry(depth_model, "depth model")
        rembg_dirs = (
            folder_paths().get_folder_paths("rembg") if "rembg" in folder_paths().folder_names_and_paths else []
        )
        ref = build_reference(
            img,
            fg,
            depth_img,
            depth_model=model,
            rembg_dirs=rembg_dirs,
            config=ReferenceConfig(border_ratio=float(border_ratio)),
            device=torch_device() if model else "cpu",
        ).to("cpu")
        return (ref, ref.preview[None].clone(), ref.alpha.clone())


NODE_CLASS_MAPPINGS = {"A124_Reference": A124_Reference}
NODE_DISPLAY_NAME_MAPPINGS = {"A124_Reference": "Reference Image (Animate124)"}
