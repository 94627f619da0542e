"""Textual inversion node (step 0) and an embedding loader, both producing A124_EMBEDDING."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from torch import Tensor

from a124_core.presets import PRESETS
from a124_core.priors.base import PriorKind

from .glue import (
    CATEGORY,
    EMBEDDING,
    PRIOR_TYPES,
    REFERENCE,
    Progress,
    folder_paths,
    output_dir,
    resolve_output_file,
    torch_device,
    training_mode,
)


@dataclass(frozen=True)
class Embedding:
    """A learned token: what the refine stage injects into the ControlNet prior's text encoder."""

    token: str
    """Placeholder token, e.g. "_panda_"; also the file name and key."""
    vectors: Tensor  # [n, hidden] float32
    path: Path | None
    """The `<token>.safetensors` file ({token: [n, hidden]}), readable by diffusers and ComfyUI."""


def _check_resume(resume_from: str) -> bool | str:
    if not resume_from.strip():
        return True
    try:
        resolve_output_file(resume_from, "Checkpoint")
    except FileNotFoundError as err:
        return str(err)
    return True


class A124_TextualInversion:
    """Learns one SD1.5 token for the reference image (SPEC 9)."""

    DESCRIPTION = (
        "Step 0: learns a token (e.g. _panda_) that makes SD1.5 draw this object; the refine stage's ControlNet "
        "prompt uses it. Writes <token>.safetensors (ComfyUI prompt syntax embedding:<token>)."
    )
    CATEGORY = f"{CATEGORY}/training"
    FUNCTION = "train"
    RETURN_TYPES = (EMBEDDING, "STRING")
    RETURN_NAMES = ("embedding", "token")
    OUTPUT_TOOLTIPS = ("The learned token for the refine stage.", "The token text, for prompts.")

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "sd_prior": (PRIOR_TYPES[PriorKind.IMAGE_TEXT], {"tooltip": "SD1.5 prior (Load SD1.5 Prior)."}),
                "reference": (REFERENCE, {"tooltip": "The reference image (its 512 RGBA copy is used)."}),
                "token": ("STRING", {"default": "_panda_", "tooltip": "New token: lower case, digits, _ or -."}),
                "initializer": (
                    "STRING",
                    {"default": "panda", "tooltip": "One word naming the object; the token starts from it."},
                ),
                "preset": (
                    list(PRESETS),
                    {"default": "paper", "tooltip": "paper: SPEC 9 (3000 steps); fast: 1500; smoke: install check."},
                ),
                "steps": (
                    "INT",
                    {"default": 0, "min": 0, "max": 100000, "tooltip": "Optimizer steps; 0 = the preset's."},
                ),
                "batch_size": (
                    "INT",
                    {"default": 16, "min": 1, "max": 64, "tooltip": "Images per step (gradient accumulation)."},
                ),
                "resolution": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 1024,
                        "step": 8,
                        "tooltip": "Training size; 0 = the prior's native size (512).",
                    },
                ),
                "training_seed": (
                    "INT",
                    {"default": 3407, "min": 0, "max": 2**31 - 1, "tooltip": "Seed of augmentations and noise."},
                ),
            },
            "optional": {
                "resume_from": (
                    "STRING",
                    {"default": "", "tooltip": "A checkpoint (relative to output/animate124) to continue."},
                ),
                "save_to_embeddings": (
                    "BOOLEAN",
                    {"default": True, "tooltip": "Also copy the file into models/embeddings."},
                ),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, token: str, initializer: str, resume_from: str = "") -> bool | str:
        from a124_core.textual_inversion import TextualInversionConfig

        try:
            TextualInversionConfig(token=token, initializer=initializer)
        except ValueError as err:
            return str(err)
        return _check_resume(resume_from)

    def train(
        self,
        sd_prior,
        reference,
        token,
        initializer,
        preset,
        steps,
        batch_size,
        resolution,
        training_seed,
        resume_from="",
        save_to_embeddings=True,
    ):
        from a124_core.presets import preset as named_preset
        from a124_core.textual_inversion import train_textual_inversion
        from a124_core.training.runner import TrainingCancelled

        if not all(hasattr(sd_prior, part) for part in ("unet", "tokenizer", "text_encoder")):
            raise ValueError(
                "Textual inversion trains through the diffusers text encoder and UNet: wire Load SD1.5 Prior here "
                "(the SD1.5 prior from a ComfyUI checkpoint works for the static stage only)."
            )
        cfg = replace(
            named_preset(preset).textual_inversion,
            token=token,
            initializer=initializer,
            steps=int(steps) or named_preset(preset).textual_inversion.steps,
            batch_size=int(batch_size),
            micro_batch=min(4, int(batch_size)),
            resolution=int(resolution) or None,
            seed=int(training_seed),
        )
        folder = output_dir("embeddings")
        progress = Progress(cfg.steps)
        resume = resolve_output_file(resume_from, "Checkpoint") if resume_from.strip() else None
        sd_prior.to(torch_device())
        try:
            with training_mode():
                result = train_textual_inversion(
                    sd_prior,
                    reference,
                    cfg,
                    output_dir=folder,
                    resume_from=resume,
                    callbacks=progress.callbacks(),
                )
        except TrainingCancelled:
            progress.raise_interrupt()
            raise
        finally:
            sd_prior.to("cpu")
        if save_to_embeddings and result.path is not None:
            target = Path(folder_paths().get_folder_paths("embeddings")[0], result.path.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(result.path, target)
        return (Embedding(result.token, result.embedding, result.path), result.token)


class A124_LoadEmbedding:
    """A textual-inversion file from models/embeddings as A124_EMBEDDING."""

    DESCRIPTION = "Loads <token>.safetensors ({token: [n, 768]}) from models/embeddings, e.g. from an earlier run."
    CATEGORY = f"{CATEGORY}/training"
    FUNCTION = "load"
    RETURN_TYPES = (EMBEDDING, "STRING")
    RETURN_NAMES = ("embedding", "token")
    OUTPUT_TOOLTIPS = ("The token for the refine stage.", "The token text, for prompts.")

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        files = [f for f in folder_paths().get_filename_list("embeddings") if f.endswith(".safetensors")]
        return {"required": {"embedding": (files, {"tooltip": "A safetensors embedding with one key (the token)."})}}

    def load(self, embedding: str):
        from safetensors.torch import load_file

        path = folder_paths().get_full_path("embeddings", embedding)
        if path is None:
            raise FileNotFoundError(f"{embedding} not found in {folder_paths().get_folder_paths('embeddings')}.")
        state = load_file(path)
        if len(state) != 1:
            raise ValueError(f"{path} holds {len(state)} tensors; a token file holds one: {{token: [n, dim]}}.")
        ((name, vectors),) = state.items()
        return (Embedding(name, vectors.float().reshape(-1, vectors.shape[-1]), Path(path)), name)


NODE_CLASS_MAPPINGS = {"A124_TextualInversion": A124_TextualInversion, "A124_LoadEmbedding": A124_LoadEmbedding}
NODE_DISPLAY_NAME_MAPPINGS = {
    "A124_TextualInversion": "Textual Inversion (Animate124)",
    "A124_LoadEmbedding": "Load Embedding (Animate124)",
}
