"""Reference node: one image (+ optional mask and depth) -> the recentred reference every stage consumes."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from a124_core.reference import ReferenceConfig, build_reference

from .glue import CATEGORY, Reference, check_entries, check_numbers, first_error, folder_paths, list_model_dirs

NONE = "none"
_DEPTH_FOLDERS = ("animate124", "depth_models")


class A124_Reference(io.ComfyNode):
    """IMAGE (+ MASK, + depth IMAGE or a depth model) -> A124_REFERENCE and a preview."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        depth_models = [NONE] + list_model_dirs(_DEPTH_FOLDERS, ("preprocessor_config.json",))
        return io.Schema(
            node_id="A124_Reference",
            display_name="Reference Image (Animate124)",
            category=f"{CATEGORY}/reference",
            description=(
                "Prepares the input image: foreground from its alpha, a mask or rembg, recentred so the object spans "
                "a fixed fraction of the frame, resized to 256 (and 512 for textual inversion), with an optional "
                "depth map."
            ),
            inputs=[
                io.Image.Input("image", tooltip="The object to animate (first image of the batch is used)."),
                io.Float.Input(
                    "border_ratio",
                    default=0.2,
                    min=0.0,
                    max=0.45,
                    step=0.01,
                    tooltip="Margin around the object as a fraction of the frame (SPEC 8: 0.2).",
                ),
                io.Mask.Input(
                    "mask",
                    optional=True,
                    tooltip="Foreground mask as LoadImage gives it (1 - alpha: 1 = background); it is inverted here. "
                    "Used only when the image has no alpha; an all-zero mask (image without alpha) is ignored.",
                ),
                io.Image.Input(
                    "depth",
                    optional=True,
                    tooltip="Depth map aligned with the image, brighter = nearer (e.g. from a depth node).",
                ),
                io.Combo.Input(
                    "depth_model",
                    options=depth_models,
                    default=NONE,
                    optional=True,
                    tooltip="A transformers depth model folder (DPT / Depth Anything) under models/animate124 or "
                    "models/depth_models; ignored when a depth image is wired.",
                ),
                io.Boolean.Input(
                    "mask_is_foreground",
                    default=False,
                    optional=True,
                    tooltip="Set when the wired mask already has 1 = object (e.g. from a segmentation node).",
                ),
            ],
            outputs=[
                Reference.Output(
                    "reference",
                    display_name="reference",
                    tooltip="The reference for the textual-inversion and stage nodes.",
                ),
                io.Image.Output(
                    "preview", display_name="preview", tooltip="The recentred object over a checkerboard (256 x 256)."
                ),
                # Output ids differ from input ids (ComfyUI 0.3.x requires it); the name shown stays "mask".
                io.Mask.Output(
                    "recentred_mask",
                    display_name="mask",
                    tooltip="The recentred foreground mask (1 = object).",
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, border_ratio=None, depth_model=NONE) -> bool | str:
        return first_error(
            check_numbers(cls, border_ratio=border_ratio), check_entries(depth_model=(depth_model, "depth model"))
        )

    @classmethod
    def execute(cls, image, border_ratio, mask=None, depth=None, depth_model=NONE, mask_is_foreground=False):
        from .glue import resolve_entry, torch_device

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
        fp = folder_paths()
        rembg_dirs = fp.get_folder_paths("rembg") if "rembg" in fp.folder_names_and_paths else []
        ref = build_reference(
            img,
            fg,
            depth_img,
            depth_model=model,
            rembg_dirs=rembg_dirs,
            config=ReferenceConfig(border_ratio=float(border_ratio)),
            device=torch_device() if model else "cpu",
        ).to("cpu")
        return io.NodeOutput(ref, ref.preview[None].clone(), ref.alpha.clone())
