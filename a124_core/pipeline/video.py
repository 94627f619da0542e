"""Video to 4D, the whole job: `python -m a124_core run --video clip.mp4 --prompt "a panda is dancing" --out OUT`.

The user's video is the reference: its frames recentred on one crop, its masks (a mask video, the frames' own
alpha, or rembg per frame) and times i / (N - 1) (`reference/clip*.py`). Everything is checked before anything is
written (the file probes, the frame budget, the model folders this run needs, then the decoded frames: an empty
mask names its frame), the clip is saved beside the checkpoints, the static stage learns the object from the clip's
first frame (SD1.5 + Zero123 + reconstruction, exactly as for one image), the coarse stage learns the motion from
every frame (`training/video_clip.py`: per-frame reconstruction, Zero123 conditioned on each view's frame, the
representation's smoothness term; the text-to-video prior only with `video_prior`), on the deformation field unless
another representation is asked for. Then the renders and the animated GLB, as for an image. No textual inversion
and no refine stage: every frame of the video supervises the appearance itself.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..presets import preset
from ..priors.latent import check_sd_single_file
from ..prompts import RunPrompts
from ..run_record import RunFingerprint, write_record
from ..training.config import config_to_dict
from ..training.representations import DEFAULT_REPRESENTATION
from ..weight_files import check_weight_files
from .models import is_weight_file, load_priors
from .prepare import PreparedRun, check_cancelled, clear_for_overwrite
from .render import render_outputs
from .settings import SMOKE_WARNING, RunSettings, RunSummary
from .validate import check_options, check_run_folder, fingerprint_of, model_paths, reference_config, rembg_dirs

#: The representation of a video run unless the user picks another: points keep their identity over time, so the
#: motion of every frame moves one canonical object (DreamGaussian4D's deformation-only second stage).
VIDEO_REPRESENTATION = "deformation"
#: Frames a video run uses at most, per preset; a longer clip keeps every k-th frame (and says which).
FRAME_BUDGET = {"paper": 64, "fast": 32, "smoke": 8}
#: The stages a video run trains.
VIDEO_STAGES = ("static", "coarse")


def default_representation(video: Path | None) -> str:
    """The representation a run uses when none is named: the deformation field for a video, else the default."""
    return VIDEO_REPRESENTATION if video is not None else DEFAULT_REPRESENTATION


def clip_config(settings: RunSettings) -> Any:
    """The clip's settings: the preset's frame budget, the run's rembg model."""
    from ..reference.clip import ClipConfig

    return ClipConfig(reference=reference_config(settings), max_frames=FRAME_BUDGET.get(settings.preset, 64))


def _refuse_image_flags(settings: RunSettings) -> None:
    """Options of the image path that a video run cannot use: one line naming them."""
    image = [
        flag
        for flag, value in (("--image", settings.image), ("--mask", settings.mask), ("--depth", settings.depth))
        if value is not None
    ]
    if image:
        raise ValueError(
            f"{', '.join(image)} describe one reference image; a video run takes --video (with --mask-video for its "
            "masks, --depth-model for per-frame depth). Pass one or the other."
        )
    if settings.mvdream is not None:
        raise ValueError("--mvdream is text-to-4D's 3D prior; a video run's 3D prior is Zero123. Drop --mvdream.")
    refine = [f for f, v in (("--token", settings.token), ("--refine-prompt", settings.refine_prompt)) if v]
    if refine:
        raise ValueError(
            f"{', '.join(refine)} name the learned token of the refine stage, which a video run does not have "
            "(every frame supervises the appearance); drop them."
        )


def video_priors(settings: RunSettings) -> tuple[str, ...]:
    """The priors a video run loads: the 2D prior and Zero123-XL (+ the video prior when asked for)."""
    return ("sd", "zero123", *(("video",) if settings.video_prior else ()))


def _check_models(settings: RunSettings) -> None:
    if settings.preset == "smoke":
        return
    if settings.models_dir is None:
        raise ValueError("Presets other than smoke need --models-dir (ComfyUI's models folder with the priors).")
    paths = model_paths(settings)
    missing = paths.missing_files(video_priors(settings))
    if missing:
        raise FileNotFoundError("Model files are missing (see README: model files):\n  " + "\n  ".join(missing))
    for folder in paths.used(video_priors(settings)).values():
        check_weight_files(folder)  # headers only: a truncated download fails here, in one line
    if is_weight_file(paths.sd):
        check_sd_single_file(paths.sd)  # an MVDream / ControlNet / SDXL file as the 2D prior: one line


def video_fingerprint(settings: RunSettings, prompts: RunPrompts) -> RunFingerprint:
    """What decides a video run's results (compared by `--resume`): the video and mask video by content, prompts,
    seed, preset, representation, the priors it loads, and the clip settings."""
    inputs = {"image": settings.video, "mask": settings.mask_video}
    extra = {"input": "video", "video_prior": settings.video_prior, "max_frames": clip_config(settings).max_frames}
    return fingerprint_of(settings, prompts, inputs, video_priors(settings), extra)


@dataclass
class CheckedVideo:
    """What `validate_video` checked and decoded; only the (empty) output folder exists yet."""

    prompts: RunPrompts
    device: torch.device
    clip: Any
    """The `ReferenceClip` (on the CPU), decoded and recentred."""
    fingerprint: RunFingerprint
    seconds: float
    """Time spent decoding and cutting out the frames."""


def validate_video(settings: RunSettings) -> CheckedVideo:
    """Every check of a video run, then the clip itself (per-frame checks: an empty mask names its frame), before
    anything is written; the output folder is checked last. Raises ValueError / FileNotFoundError in one line."""
    from ..reference import check_clip_video, load_clip_video

    prompts, device = check_options(settings)
    _refuse_image_flags(settings)
    config, dirs = clip_config(settings), rembg_dirs(settings)
    given = dict(depth_model=settings.depth_model, rembg_dirs=dirs, config=config)
    plan = check_clip_video(settings.video, settings.mask_video, **given)
    _check_models(settings)
    fingerprint = video_fingerprint(settings, prompts)
    check_run_folder(settings, fingerprint)
    start = time.time()
    clip = load_clip_video(settings.video, settings.mask_video, plan=plan, **given)
    seconds = round(time.time() - start, 2)
    return CheckedVideo(prompts, device, clip, fingerprint, seconds)


def load_video_priors(models_root: Path, settings: RunSettings) -> dict[str, Any]:
    """The video run's priors (`video_priors`), on the CPU; each stage moves its own."""
    return load_priors(model_paths(settings, models_root), video_priors(settings))


def _note(run: PreparedRun, line: str) -> None:
    run.summary.notes.append(line)
    sys.stderr.write(line + "\n")


def prepare_video(settings: RunSettings, should_cancel: Callable[[], bool] | None = None) -> tuple[PreparedRun, Any]:
    """Validate (and decode the clip), record the run, save the clip and its first frame, load the priors."""
    checked = validate_video(settings)
    out = Path(settings.out)
    clear_for_overwrite(settings, out)
    write_record(out, checked.fingerprint)
    presets = preset(settings.preset, settings.representation).with_seed(settings.seed)
    summary = RunSummary(
        settings={k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
        prompts=asdict(checked.prompts),
    )
    summary.settings["stage_configs"] = {name: config_to_dict(presets.stage(name)) for name in VIDEO_STAGES}
    summary.stage_seconds["preprocess"] = checked.seconds
    clip = checked.clip
    run = PreparedRun(settings, checked.prompts, presets, checked.device, out, clip.first_reference(), {}, summary)
    run.should_cancel = should_cancel
    for warning in checked.prompts.warnings:
        _note(run, f"warning: {warning}")
    if clip.meta.get("frames_note"):
        _note(run, f"note: {clip.meta['frames_note']}")
    summary.outputs["reference_clip"] = str(clip.save(out / "reference_clip.safetensors"))
    summary.outputs["reference"] = str(run.reference.save(out / "reference.safetensors"))
    if run.smoke:
        _note(run, SMOKE_WARNING)
        from ..priors.tiny import build_tiny_models

        models_root = run.timed("tiny_models", lambda: build_tiny_models(out / "tiny_models").models_dir)
    else:
        models_root = Path(settings.models_dir)
    run.priors = run.timed("load_priors", lambda: load_video_priors(models_root, settings))
    check_cancelled(should_cancel, "loading the priors")
    return run, clip


def train_video(run: PreparedRun, clip: Any) -> Any:
    """The static stage on the clip's first frame, then the coarse stage on every frame; returns the 4D scene."""
    from ..training.coarse_stage import CoarseStage, DynamicPriors
    from ..training.scene import scene_digest
    from ..training.static_stage import StaticPriors, StaticStage
    from .train import stage_runner

    p, priors, c, device, stage = run.prompts, run.priors, run.preset, run.device, stage_runner(run)
    static_priors = StaticPriors(priors["sd"], priors["zero123"])
    static = stage("static", lambda: StaticStage(c.static, run.reference, static_priors, p.static, device=device))
    dynamic = DynamicPriors(priors.get("video"), priors["zero123"])
    scene = stage(
        "coarse",
        lambda: CoarseStage(c.coarse, clip, static, dynamic, p.motion, device=device),
        {"static": scene_digest(static)},
    )
    for name in VIDEO_STAGES:
        run.summary.outputs[f"checkpoint_{name}"] = str(run.checkpoints / f"{name}.safetensors")
    return scene


@torch.no_grad()
def reference_view_psnr(scene: Any, clip: Any, run: PreparedRun) -> float:
    """Mean PSNR (dB) of the reference camera's renders at the clip's times against the clip's frames, at the
    stages' reference size: how closely the 4D scene replays the video it was given."""
    from ..cameras import reference_camera
    from ..rendering.renderer import render_cameras
    from ..training.terms.clip_frames import resized_frames

    config, device = run.preset.coarse, run.device
    size, n = config.reference_size, len(clip)
    cameras = reference_camera(config.camera).to(device)[torch.zeros(n, dtype=torch.long)]
    white = torch.ones(3, device=device)
    out = render_cameras(
        scene.field, cameras, size, size, clip.times.to(device), config.render, scene.occupancy, background=white
    )
    truth = resized_frames(clip.rgb.to(device), size, "bilinear").clamp(0, 1)
    mse = ((out["rgb"].clamp(0, 1) - truth) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
    return float((-10 * torch.log10(mse)).mean())


def run_video(settings: RunSettings, should_cancel: Callable[[], bool] | None = None) -> RunSummary:
    """The whole video-to-4D job: validate + decode, train, render; returns (and writes) the summary."""
    from ..checkpoint import atomic_write_json

    run, clip = prepare_video(settings, should_cancel)
    scene = train_video(run, clip)
    check_cancelled(should_cancel, "training (all stages are saved)")
    scene.to(run.device)
    psnr = round(reference_view_psnr(scene, clip, run), 2)
    run.summary.outputs["reference_view_psnr_db"] = str(psnr)
    _note(run, f"the reference view replays the clip's {len(clip)} frames at {psnr} dB (mean PSNR)")
    run.timed("render", lambda: render_outputs(run, scene))
    atomic_write_json(run.out / "summary.json", asdict(run.summary), indent=2, default=str)
    if run.smoke:
        sys.stderr.write(SMOKE_WARNING + "\n")
    return run.summary


__all__ = [
    "FRAME_BUDGET",
    "VIDEO_REPRESENTATION",
    "CheckedVideo",
    "clip_config",
    "default_representation",
    "load_video_priors",
    "video_priors",
    "prepare_video",
    "reference_view_psnr",
    "run_video",
    "train_video",
    "validate_video",
    "video_fingerprint",
]
