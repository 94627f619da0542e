"""MVDream Loader: Dream-in-4D's multi-view prior (a released file from models/checkpoints or the diffusers port).

The released files (`sd-v2.1-base-4view.pt`, `sd-v1.5-4view.pt`) are plain state dicts in the original key layout
(read with `torch.load(weights_only=True)`) and carry no tokenizer: the node reads CLIP's BPE files from ComfyUI's
own `comfy/sd1_tokenizer` or from a model folder's `tokenizer/` (the 2D prior's; CLIP's vocabulary is the same for
both text towers). A diffusers folder (ashawkey/mvdream-sd2.1-diffusers) brings its own.
"""

from __future__ import annotations

import json
from pathlib import Path

from comfy_api.v0_0_2 import io

from a124_core.priors.base import PriorKind

from .glue import CATEGORY, PRIOR_TYPES, check_entries, list_model_dirs, list_model_files, resolve_entry, training_mode

#: The tokenizer ComfyUI ships (comfy/sd1_tokenizer: CLIP's vocab.json + merges.txt).
COMFY_TOKENIZER = "comfy/sd1_tokenizer"
_WEIGHT_SUFFIXES = (".pt", ".safetensors")


def _is_mvdream_folder(entry: str) -> bool:
    """A diffusers folder whose UNet is MVDream's MultiViewUNetModel (its config names the class)."""
    try:
        config = json.loads((resolve_entry(entry, "MVDream") / "unet" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return config.get("_class_name") == "MultiViewUNetModel"


def _models() -> list[str]:
    folders = [e for e in list_model_dirs(("diffusers", "animate124"), ("unet/config.json",)) if _is_mvdream_folder(e)]
    return list_model_files(("checkpoints",), _WEIGHT_SUFFIXES) + folders


def _tokenizers() -> list[str]:
    return [COMFY_TOKENIZER] + list_model_dirs(("configs", "diffusers", "animate124"), ("tokenizer/vocab.json",))


def _tokenizer_dir(entry: str) -> Path:
    """The folder holding vocab.json + merges.txt for the chosen entry."""
    if entry != COMFY_TOKENIZER:
        return resolve_entry(entry, "tokenizer folder") / "tokenizer"
    try:
        import comfy.sd1_clip
    except ImportError as err:
        raise ValueError(f"{COMFY_TOKENIZER} is ComfyUI's own tokenizer; outside ComfyUI pick a folder.") from err
    return Path(comfy.sd1_clip.__file__).resolve().parent / "sd1_tokenizer"


class A124_LoadMVDreamPrior(io.ComfyNode):
    """MVDream (four views denoised jointly, each with its camera) as the static stage's multi-view prior."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_LoadMVDreamPrior",
            display_name="MVDream Loader (Animate124)",
            category=f"{CATEGORY}/priors",
            description="Loads MVDream (MVDream/MVDream sd-v2.1-base-4view.pt or sd-v1.5-4view.pt from "
            "models/checkpoints, or the diffusers port in models/diffusers) as the 3D prior of the static stage's "
            "text mode (Dream-in-4D: MVDream + SD2.1-base, no reference image).",
            inputs=[
                io.Combo.Input(
                    "model",
                    options=_models(),
                    tooltip="checkpoints/<file>.pt or .safetensors (the released state dict, original key names) or "
                    "diffusers/<folder> (ashawkey/mvdream-sd2.1-diffusers layout).",
                ),
                io.Combo.Input(
                    "tokenizer",
                    options=_tokenizers(),
                    default=COMFY_TOKENIZER,
                    tooltip="CLIP tokenizer for a released file (it has none): ComfyUI's own, or the tokenizer/ of a "
                    "model folder such as the 2D prior's. Unused for a diffusers folder.",
                ),
            ],
            outputs=[
                PRIOR_TYPES[PriorKind.IMAGE_TEXT_MULTIVIEW].Output(
                    "mvdream_prior",
                    display_name="mvdream_prior",
                    tooltip="A multi-view image-text prior for the static stage's text mode.",
                )
            ],
        )

    @classmethod
    def validate_inputs(cls, model=None, tokenizer=None) -> bool | str:
        folder = None if tokenizer in (None, COMFY_TOKENIZER) else tokenizer
        found = check_entries(model=(model, "MVDream model"), tokenizer=(folder, "tokenizer folder"))
        if found is not True or not model:
            return found
        if not model.startswith("checkpoints/") and not _is_mvdream_folder(model):
            return f"{model} is not an MVDream diffusers folder (its unet/config.json names MultiViewUNetModel)."
        if model.startswith("checkpoints/") and not model.endswith(_WEIGHT_SUFFIXES):
            return f"{model}: MVDream weights are a .pt or .safetensors file (MVDream/MVDream: sd-v2.1-base-4view.pt)."
        return True

    @classmethod
    def execute(cls, model: str, tokenizer: str) -> io.NodeOutput:
        from a124_core.priors.mvdream import MVDreamPrior

        path = resolve_entry(model, "MVDream model")
        tokenizer_dir = None if path.is_dir() else _tokenizer_dir(tokenizer)
        with training_mode():
            prior = MVDreamPrior.from_pretrained(path, device="cpu", tokenizer_dir=tokenizer_dir)
        return io.NodeOutput(prior)
