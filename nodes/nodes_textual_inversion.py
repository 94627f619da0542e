"""Textual inversion node (step 0) and an embedding loader, both producing A124_EMBEDDING."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from comfy_api.v0_0_2 import io
from torch import Tensor

from a124_core.presets import PRESETS
from a124_core.priors.base import PriorKind

from .glue import (
    CATEGORY,
    NOT_WIRED,
    PRIOR_TYPES,
    Embedding,
    Progress,
    first_error,
    folder_paths,
    torch_device,
    training_mode,
)
from .output_files import check_writable, output_dir, resolve_output_file


@dataclass(frozen=True)
class LearnedToken:
    """A learned token: what the refine stage injects into the ControlNet prior's text encoder."""

    token: str
    """Placeholder token, e.g. "_panda_"; also the file name and key."""
    vectors: Tensor  # [n, hidden] float32
    path: Path | None
    """The `<token>.safetensors` file ({token: [n, hidden]}), readable by diffusers and ComfyUI."""


def check_resume_file(resume_from: str | None) -> bool | str:
    if not resume_from or not resume_from.strip():
        return True
    try:
        resolve_output_file(resume_from, "Checkpoint")
    except FileNotFoundError as err:
        return str(err)
    return True


#: Photos of one subject the node takes as an IMAGE batch (Dream-in-4D's personalisation uses 4-6).
SUBJECT_PHOTOS = (4, 6)
#: The smallest side of a subject photo, in pixels (training upsamples to the prior's 512).
MIN_PHOTO_SIDE = 64


def subject_photos(images: Tensor) -> Tensor:
    """ComfyUI IMAGE batch [B, H, W, 3] -> opaque RGBA [B, 4, S, S] centre squares; a wrong count or size is one
    ValueError, raised before anything is built."""
    import torch

    from a124_core.textual_inversion.trainer import centre_square

    low, high = SUBJECT_PHOTOS
    if images.dim() != 4 or images.shape[-1] not in (3, 4):
        raise ValueError(f"images must be an IMAGE batch [B, H, W, 3], got {tuple(images.shape)}.")
    count, h, w = images.shape[0], images.shape[1], images.shape[2]
    if not low <= count <= high:
        raise ValueError(
            f"images holds {count} photo(s); textual inversion of a subject takes {low}-{high} (Dream-in-4D's "
            f"personalisation), or wire one Reference Image instead."
        )
    if min(h, w) < MIN_PHOTO_SIDE:
        raise ValueError(f"The photos are {w} x {h} px; give at least {MIN_PHOTO_SIDE} px on each side.")
    with torch.inference_mode(False):
        rgb = images[..., :3].detach().float().clone().permute(0, 3, 1, 2).clamp(0, 1)
        return torch.stack([centre_square(torch.cat([im, torch.ones_like(im[:1])])) for im in rgb])


def _outputs() -> list:
    return [
        # Output ids differ from input ids (ComfyUI 0.3.x requires it); the names shown are display names.
        Embedding.Output(
            "learned_embedding",
            display_name="embedding",
            tooltip="The learned token for the refine stage.",
        ),
        io.String.Output("token_text", display_name="token", tooltip="The token text, for prompts."),
    ]


class A124_TextualInversion(io.ComfyNode):
    """Learns one SD1.5 token for the reference image (SPEC 9)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        from .glue import Reference

        return io.Schema(
            node_id="A124_TextualInversion",
            display_name="Textual Inversion (Animate124)",
            category=f"{CATEGORY}/training",
            description="Step 0: learns a token (e.g. _panda_) that makes SD1.5 draw this object; the refine stage's "
            "ControlNet prompt uses it. Writes <token>.safetensors (ComfyUI prompt syntax embedding:<token>). "
            "Takes the reference image, or 4-6 photos of one subject as an IMAGE batch (personalised 4D).",
            inputs=[
                PRIOR_TYPES[PriorKind.IMAGE_TEXT].Input("sd_prior", tooltip="SD1.5 prior (Load SD1.5 Prior)."),
                Reference.Input(
                    "reference",
                    optional=True,
                    tooltip="The reference image (its 512 RGBA copy is used); or wire images instead.",
                ),
                io.Image.Input(
                    "images",
                    optional=True,
                    tooltip="4-6 photos of the subject as one IMAGE batch (at least 64 px a side; centre-cropped "
                    "to squares, used opaque); each training sample picks one. Instead of reference.",
                ),
                io.String.Input("token", default="_panda_", tooltip="New token: lower case, digits, _ or -."),
                io.String.Input(
                    "initializer", default="panda", tooltip="One word naming the object; the token starts from it."
                ),
                io.Combo.Input(
                    "preset",
                    options=list(PRESETS),
                    default="paper",
                    tooltip="paper: SPEC 9 (3000 steps); fast: 1000 from a pool of 1024 encoded augmentations; "
                    "smoke: install check.",
                ),
                io.Int.Input("steps", default=0, min=0, max=100000, tooltip="Optimizer steps; 0 = the preset's."),
                io.Int.Input(
                    "batch_size", default=16, min=1, max=64, tooltip="Images per step (gradient accumulation)."
                ),
                io.Int.Input(
                    "resolution",
                    default=0,
                    min=0,
                    max=1024,
                    step=8,
                    tooltip="Training size; 0 = the prior's native size (512).",
                ),
                io.Int.Input(
                    "training_seed", default=3407, min=0, max=2**31 - 1, tooltip="Seed of augmentations and noise."
                ),
                io.String.Input(
                    "resume_from",
                    default="",
                    optional=True,
                    tooltip="A checkpoint (relative to output/animate124) to continue.",
                ),
                io.Boolean.Input(
                    "save_to_embeddings",
                    default=True,
                    optional=True,
                    tooltip="Also copy the file into models/embeddings.",
                ),
            ],
            outputs=_outputs(),
        )

    @classmethod
    def validate_inputs(
        cls, token=None, initializer=None, resume_from="", reference=NOT_WIRED, images=NOT_WIRED
    ) -> bool | str:
        from a124_core.textual_inversion import TextualInversionConfig

        if token is not None and initializer is not None:
            try:
                TextualInversionConfig(token=token, initializer=initializer)
            except ValueError as err:
                return str(err)
        if (reference == NOT_WIRED) == (images == NOT_WIRED):
            return "Wire either reference (one image) or images (4-6 photos of the subject), not both or neither."
        return first_error(check_resume_file(resume_from), check_writable("embeddings"))

    @classmethod
    def execute(
        cls,
        sd_prior,
        token,
        initializer,
        preset,
        steps,
        batch_size,
        resolution,
        training_seed,
        resume_from="",
        save_to_embeddings=True,
        reference=None,
        images=None,
    ) -> io.NodeOutput:
        from a124_core.presets import preset as named_preset
        from a124_core.textual_inversion import train_textual_inversion
        from a124_core.training.runner import TrainingCancelled

        subject = subject_photos(images) if images is not None else reference
        if subject is None:
            raise ValueError("Wire either reference (one image) or images (4-6 photos of the subject).")
        if not all(hasattr(sd_prior, part) for part in ("unet", "tokenizer", "text_encoder")):
            raise ValueError(
                "Textual inversion trains through the diffusers text encoder and UNet: wire Load SD1.5 Prior here "
                "(the SD1.5 prior from a ComfyUI checkpoint works for the static stage only)."
            )
        defaults = named_preset(preset).textual_inversion
        cfg = replace(
            defaults,
            token=token,
            initializer=initializer,
            steps=int(steps) or defaults.steps,
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
                    sd_prior, subject, cfg, output_dir=folder, resume_from=resume, callbacks=progress.callbacks()
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
        return io.NodeOutput(LearnedToken(result.token, result.embedding, result.path), result.token)


class A124_LoadEmbedding(io.ComfyNode):
    """A textual-inversion file from models/embeddings as A124_EMBEDDING."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        files = [f for f in folder_paths().get_filename_list("embeddings") if f.endswith(".safetensors")]
        return io.Schema(
            node_id="A124_LoadEmbedding",
            display_name="Load Embedding (Animate124)",
            category=f"{CATEGORY}/training",
            description="Loads <token>.safetensors ({token: [n, 768]}) from models/embeddings, e.g. from an earlier "
            "run.",
            inputs=[
                io.Combo.Input("embedding", options=files, tooltip="A safetensors embedding with one key (the token).")
            ],
            outputs=_outputs(),
        )

    @classmethod
    def execute(cls, embedding: str) -> io.NodeOutput:
        from safetensors.torch import load_file

        path = folder_paths().get_full_path("embeddings", embedding)
        if path is None:
            raise FileNotFoundError(f"{embedding} not found in {folder_paths().get_folder_paths('embeddings')}.")
        state = load_file(path)
        if len(state) != 1:
            raise ValueError(f"{path} holds {len(state)} tensors; a token file holds one: {{token: [n, dim]}}.")
        ((name, vectors),) = state.items()
        return io.NodeOutput(LearnedToken(name, vectors.float().reshape(-1, vectors.shape[-1]), Path(path)), name)
