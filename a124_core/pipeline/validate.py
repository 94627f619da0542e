"""Every check of a run that needs no model, before anything is built or written (the output folder last).

Each mistake raises ValueError / FileNotFoundError naming the value and the fix; the CLI prints it as one line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..devices import resolve_device
from ..presets import preset
from ..priors.latent import check_sd_single_file
from ..prompts import RunPrompts, derive_prompts
from ..run_folder import check_output_folder, refuse_previous_run
from ..run_record import RunFingerprint, check_resume, make_fingerprint, prior_identity
from ..weight_files import check_weight_files
from .models import MVDREAM_FILE, ModelPaths, has_open_clip_tower, is_weight_file
from .settings import RunSettings

#: The folders a run writes in its output folder (checked before any work: a file there stops it in one line).
OUTPUT_FOLDERS = ("checkpoints", "embeddings", "previews", "renders", "meshes", "tiny_models")


@dataclass
class CheckedInputs:
    """What `validate` decoded and checked; nothing is built or written yet."""

    prompts: RunPrompts
    device: torch.device
    image: Any
    """The decoded reference image (PIL), None for text-to-4D; likewise `mask` and `depth`."""
    mask: Any
    depth: Any
    fingerprint: RunFingerprint


def reference_config(settings: RunSettings) -> Any:
    from ..reference.reference import ReferenceConfig

    return ReferenceConfig(rembg_model=settings.rembg_model)


def rembg_dirs(settings: RunSettings) -> list[Path]:
    return [Path(settings.models_dir) / "rembg"] if settings.models_dir is not None else []


def model_paths(settings: RunSettings, models_dir: Path | None = None) -> ModelPaths:
    """The run's model paths under `models_dir` (default the settings'): the smoke preset's tiny models stand in for
    every prior, so only whether MVDream is used carries over to them."""
    smoke = settings.preset == "smoke"
    mvdream = settings.mvdream
    return ModelPaths.from_models_dir(
        models_dir or settings.models_dir,
        settings.video_model,
        sd=None if smoke else settings.sd_model,
        sd_config=None if smoke else settings.sd_config,
        mvdream=(MVDREAM_FILE if smoke else mvdream) if mvdream is not None else None,
        text_only=settings.text_only,
    )


def run_fingerprint(settings: RunSettings, prompts: RunPrompts) -> RunFingerprint:
    """What decides this run's results (compared by `--resume`): inputs by content, priors by content identity."""
    inputs = {"image": settings.image, "mask": settings.mask, "depth": settings.depth}
    return fingerprint_of(settings, prompts, inputs)


def fingerprint_of(
    settings: RunSettings,
    prompts: RunPrompts,
    inputs: dict[str, Any],
    priors_used: tuple[str, ...] | None = None,
    extra: dict[str, Any] | None = None,
) -> RunFingerprint:
    """The fingerprint of a run reading the files `inputs` (make_fingerprint's image / mask / depth), loading the
    priors `priors_used` (None: every prior the run uses), with `extra` for whatever else decides its results."""
    if settings.preset == "smoke":
        priors: dict[str, Any] = {"all": "tiny-random (a124_core.priors.tiny, fixed seeds)"}
        if settings.mvdream is not None:
            priors["mvdream"] = "tiny-random"
    else:
        priors = dict(model_paths(settings).used(priors_used))
    depth_model = prior_identity(settings.depth_model) if settings.depth_model is not None else None
    return make_fingerprint(
        **inputs,
        prompts={k: v for k, v in asdict(prompts).items() if k != "warnings"},
        seed=settings.seed,
        preset=settings.preset,
        representation=settings.representation,
        priors=priors,
        extra={"depth_model": depth_model, "rembg_model": settings.rembg_model, **(extra or {})},
    )


def check_options(settings: RunSettings) -> tuple[RunPrompts, torch.device]:
    """The checks every run shares: preset, representation and seed, --resume/--overwrite, prompts, render numbers,
    device."""
    if settings.video is None and (settings.mask_video is not None or settings.video_prior):
        raise ValueError("--mask-video and --video-prior go with --video (video to 4D); pass the video too.")
    preset(settings.preset, settings.representation).with_seed(settings.seed)  # unknown names, a seed out of range
    if settings.resume and settings.overwrite:
        raise ValueError("--resume continues the run in --out and --overwrite deletes it: pass one of them.")
    prompts = derive_prompts(
        settings.prompt, settings.static_prompt, settings.token, settings.initializer, settings.refine_prompt
    )
    for name in ("render_resolution", "render_frames", "render_views", "fps"):
        value = getattr(settings, name)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be a positive number, got {value}.")
    return prompts, resolve_device(settings.device)


def validate(settings: RunSettings) -> CheckedInputs:
    """All checks that need no model, before anything is written (the output folder is checked last): raises
    ValueError / FileNotFoundError naming the value and the fix."""
    from ..reference.inputs import load_image_file
    from ..reference.reference import check_reference_inputs

    prompts, device = check_options(settings)
    image = mask = depth = None
    if settings.image is None:
        given = [
            flag
            for flag, value in (
                ("--mask", settings.mask),
                ("--depth", settings.depth),
                ("--depth-model", settings.depth_model),
            )
            if value is not None
        ]
        if given:
            raise ValueError(f"{', '.join(given)} describe the reference image; pass --image too (or drop them).")
    elif settings.mvdream is not None:
        raise ValueError(
            "--mvdream is text-to-4D's 3D prior; with --image the 3D prior is Zero123. Drop --mvdream or --image."
        )
    else:
        image = load_image_file(settings.image)
        mask = load_image_file(settings.mask, "mask image") if settings.mask is not None else None
        depth = load_image_file(settings.depth, "depth image") if settings.depth is not None else None
        check_reference_inputs(
            image,
            mask,
            depth,
            depth_model=settings.depth_model,
            rembg_dirs=rembg_dirs(settings),
            config=reference_config(settings),
        )
    if settings.preset != "smoke":
        if settings.models_dir is None:
            raise ValueError("Presets other than smoke need --models-dir (ComfyUI's models folder with the priors).")
        paths = model_paths(settings)
        missing = paths.missing_files()
        if missing:
            raise FileNotFoundError("Model files are missing (see README: model files):\n  " + "\n  ".join(missing))
        for folder in paths.used().values():
            check_weight_files(folder)  # headers only: a truncated download fails here, in one line
        if is_weight_file(paths.sd):
            check_sd_single_file(paths.sd)  # an MVDream / ControlNet / SDXL file as the 2D prior: one line
        if not paths.text_only and has_open_clip_tower(paths.sd):
            raise ValueError(
                f"{paths.sd} is an SD2.x model; with --image the 2D prior is also ControlNet-Tile's base, which is "
                f"SD1.5's: pass an SD1.5 model as --sd-model (SD2.1-base is text-to-4D's, beside --mvdream)."
            )
    fingerprint = run_fingerprint(settings, prompts)
    check_run_folder(settings, fingerprint)
    return CheckedInputs(prompts, device, image, mask, depth, fingerprint)


def check_run_folder(settings: RunSettings, fingerprint: RunFingerprint) -> None:
    """--out: a resume must continue the same run; a fresh run refuses another run's files unless --overwrite;
    the folder and every subfolder the run writes must be writable (checked last, before any work)."""
    out = Path(settings.out)
    if settings.resume:
        check_resume(out, fingerprint)
    elif not settings.overwrite:
        refuse_previous_run(out)
    check_output_folder(out, subfolders=OUTPUT_FOLDERS)


__all__ = [
    "OUTPUT_FOLDERS",
    "CheckedInputs",
    "check_options",
    "check_output_folder",
    "check_run_folder",
    "fingerprint_of",
    "model_paths",
    "reference_config",
    "rembg_dirs",
    "run_fingerprint",
    "validate",
]
