"""The whole job without ComfyUI: preprocess -> textual inversion -> static -> coarse -> refine -> render.

Everything is validated before the first model loads or the first file is written (`validate`): the images
(fully decoded), mask and depth inputs, the prompt, the preset, the device, the render settings, (unless the
smoke preset builds tiny random priors) every model file, on `resume` the run folder's record, and last the
output folder. Each stage writes its checkpoint into `<out>/checkpoints/`; `resume=True` skips finished stages
and continues an interrupted one from its last checkpoint, only when `<out>/run_record.json` says the folder
holds this same run (image, prompts, seed, preset, representation, priors).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .checkpoint import atomic_path, atomic_write_json
from .devices import resolve_device
from .presets import PRESETS, STAGES, Preset, preset
from .prompts import RunPrompts, derive_prompts
from .run_record import RunFingerprint, check_resume, make_fingerprint, prior_identity, write_record
from .training.config import config_to_dict
from .training.representations import REPRESENTATIONS
from .weight_files import check_weight_files

SMOKE_WARNING = (
    "SMOKE PRESET: tiny random-weight priors and a tiny grid. This checks that everything runs; "
    "the images it writes are not meaningful."
)
TEXT_ONLY_NOTE = (
    "No --image: text-to-4D (Dream-in-4D's path): the static stage learns from the SD prior alone, the coarse stage "
    "from the video prior alone; textual inversion, Zero123, reconstruction and the refine stage need an image."
)


@dataclass(frozen=True)
class ModelPaths:
    """Local model folders in ComfyUI's `models/` layout (see README: model files)."""

    sd15: Path
    zero123: Path
    video: Path
    controlnet: Path

    @classmethod
    def from_models_dir(cls, models_dir: str | Path, video: str = "text-to-video-ms-1.7b") -> ModelPaths:
        root = Path(models_dir)
        return cls(
            sd15=root / "diffusers" / "stable-diffusion-v1-5",
            zero123=root / "diffusers" / "zero123-xl",
            video=root / "diffusers" / video,
            controlnet=root / "controlnet" / "control_v11f1e_sd15_tile",
        )

    def missing_files(self) -> list[str]:
        """Every expected file that is absent, as 'file missing in folder' lines (empty when all are there)."""
        expected = {
            self.sd15: [
                "model_index.json",
                "unet/config.json",
                "vae/config.json",
                "text_encoder/config.json",
                "tokenizer/vocab.json",
                "scheduler/scheduler_config.json",
            ],
            self.zero123: ["unet/config.json", "vae/config.json", "image_encoder/config.json"],
            self.video: [
                "unet/config.json",
                "vae/config.json",
                "text_encoder/config.json",
                "tokenizer/vocab.json",
                "scheduler/scheduler_config.json",
            ],
            self.controlnet: ["config.json"],
        }
        missing = []
        for folder, files in expected.items():
            if not folder.is_dir():
                missing.append(f"folder {folder} does not exist (expected {', '.join(files)})")
                continue
            missing += [f"{name} missing in {folder}" for name in files if not (folder / name).is_file()]
        if self.zero123.is_dir() and not any(
            (self.zero123 / p).is_dir() for p in ("cc_projection", "clip_camera_projection")
        ):
            missing.append(f"cc_projection/ (or clip_camera_projection/) missing in {self.zero123}")
        return missing


@dataclass
class RunSettings:
    """What the user asked for."""

    image: Path | None
    """The reference image; None for text-to-4D (no textual inversion, Zero123, reconstruction or refinement)."""
    prompt: str
    out: Path
    mask: Path | None = None
    """Foreground mask image (white = object) for an image without alpha (else rembg cuts the object out)."""
    depth: Path | None = None
    """Depth image aligned with the reference (larger = nearer); turns the depth loss on."""
    depth_model: Path | None = None
    """A transformers depth-estimation model folder (e.g. DPT) to estimate the depth instead."""
    rembg_model: str = "u2net"
    """rembg model used without alpha or mask; its .onnx is looked for in rembg's folders and <models_dir>/rembg."""
    preset: str = "smoke"
    representation: str = "grid4d"
    """Dynamic field: 'grid4d' (the paper's) or 'deformation' (Dream-in-4D's; one mesh with morph targets)."""
    models_dir: Path | None = None
    video_model: str = "text-to-video-ms-1.7b"
    static_prompt: str | None = None
    token: str | None = None
    initializer: str | None = None
    refine_prompt: str | None = None
    seed: int = 3407
    device: str | None = None
    resume: bool = False
    render_resolution: int | None = None
    render_frames: int | None = None
    render_views: int | None = None
    fps: int = 25


@dataclass
class RunSummary:
    """Written as `<out>/summary.json`."""

    settings: dict[str, Any]
    prompts: dict[str, str]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    peak_memory_gb: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def check_output_folder(out: Path) -> None:
    """The output folder must be creatable and writable (checked before any work)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"Output folder {out} is not writable ({error.strerror}); choose another --out.") from error


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


def _reference_config(settings: RunSettings) -> Any:
    from .reference.reference import ReferenceConfig

    return ReferenceConfig(rembg_model=settings.rembg_model)


def _rembg_dirs(settings: RunSettings) -> list[Path]:
    return [Path(settings.models_dir) / "rembg"] if settings.models_dir is not None else []


def run_fingerprint(settings: RunSettings, prompts: RunPrompts) -> RunFingerprint:
    """What decides this run's results (compared by `--resume`): inputs by content, priors by content identity."""
    if settings.preset == "smoke":
        priors: dict[str, Any] = {"all": "tiny-random (a124_core.priors.tiny, fixed seeds)"}
    else:
        paths = ModelPaths.from_models_dir(settings.models_dir, settings.video_model)
        priors = {name: getattr(paths, name) for name in ("sd15", "zero123", "video", "controlnet")}
    depth_model = prior_identity(settings.depth_model) if settings.depth_model is not None else None
    return make_fingerprint(
        image=settings.image,
        mask=settings.mask,
        depth=settings.depth,
        prompts={k: v for k, v in asdict(prompts).items() if k != "warnings"},
        seed=settings.seed,
        preset=settings.preset,
        representation=settings.representation,
        priors=priors,
        extra={"depth_model": depth_model, "rembg_model": settings.rembg_model},
    )


def validate(settings: RunSettings) -> CheckedInputs:
    """All checks that need no model, before anything is written (the output folder is checked last): raises
    ValueError / FileNotFoundError naming the value and the fix."""
    from .reference.inputs import load_image_file
    from .reference.reference import check_reference_inputs

    if settings.preset not in PRESETS:
        raise ValueError(f"Unknown preset {settings.preset!r}; choose one of {', '.join(PRESETS)}.")
    prompts = derive_prompts(
        settings.prompt, settings.static_prompt, settings.token, settings.initializer, settings.refine_prompt
    )
    if settings.representation not in REPRESENTATIONS:
        raise ValueError(
            f"Unknown representation {settings.representation!r}; choose one of {', '.join(REPRESENTATIONS)}."
        )
    for name in ("render_resolution", "render_frames", "render_views", "fps"):
        value = getattr(settings, name)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be a positive number, got {value}.")
    device = resolve_device(settings.device)
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
    else:
        image = load_image_file(settings.image)
        mask = load_image_file(settings.mask, "mask image") if settings.mask is not None else None
        depth = load_image_file(settings.depth, "depth image") if settings.depth is not None else None
        check_reference_inputs(
            image,
            mask,
            depth,
            depth_model=settings.depth_model,
            rembg_dirs=_rembg_dirs(settings),
            config=_reference_config(settings),
        )
    if settings.preset != "smoke":
        if settings.models_dir is None:
            raise ValueError("Presets other than smoke need --models-dir (ComfyUI's models folder with the priors).")
        paths = ModelPaths.from_models_dir(settings.models_dir, settings.video_model)
        missing = paths.missing_files()
        if missing:
            raise FileNotFoundError("Model files are missing (see README: model files):\n  " + "\n  ".join(missing))
        for folder in (paths.sd15, paths.zero123, paths.video, paths.controlnet):
            check_weight_files(folder)  # headers only: a truncated download fails here, in one line
    fingerprint = run_fingerprint(settings, prompts)
    if settings.resume:
        check_resume(settings.out, fingerprint)
    check_output_folder(Path(settings.out))
    return CheckedInputs(prompts, device, image, mask, depth, fingerprint)


class _Progress:
    """One updating line per stage on stderr: step/total, losses, elapsed time."""

    def __init__(self, stage: str, preview_dir: Path | None = None):
        self.stage, self.start, self.preview_dir = stage, time.time(), preview_dir

    def __call__(self, step: int, total: int, losses: dict[str, float] | float, preview: torch.Tensor | None) -> None:
        loss = losses if isinstance(losses, float) else losses.get("total", sum(losses.values()))
        elapsed = time.time() - self.start
        sys.stderr.write(f"\r[{self.stage}] {step}/{total} loss {loss:.4g} {elapsed:.0f}s")
        if step == total:
            sys.stderr.write("\n")
        if preview is not None and self.preview_dir is not None:
            from PIL import Image

            array = (preview.detach().float().clamp(0, 1).cpu().numpy() * 255).astype("uint8")
            with atomic_path(self.preview_dir / f"{self.stage}.png", suffix=".png") as tmp:
                Image.fromarray(array).save(tmp)


def _peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _timed(summary: RunSummary, name: str, device: torch.device, fn: Callable[[], Any]) -> Any:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.time()
    result = fn()
    summary.stage_seconds[name] = round(time.time() - start, 2)
    summary.peak_memory_gb[name] = round(_peak_memory_gb(device), 3)
    return result


def _load_priors(models_root: Path, video_model: str) -> dict[str, Any]:
    """Load every prior onto the CPU; each stage moves its own onto the GPU only while it runs."""
    from .priors.controlnet_tile import ControlNetTilePrior
    from .priors.sd import StableDiffusionPrior
    from .priors.video import TextToVideoPrior
    from .priors.zero123 import Zero123Prior

    paths = ModelPaths.from_models_dir(models_root, video_model)
    return {
        "sd": StableDiffusionPrior.from_pretrained(paths.sd15, device="cpu"),
        "zero123": Zero123Prior.from_pretrained(paths.zero123, device="cpu"),
        "video": TextToVideoPrior.from_pretrained(paths.video, device="cpu"),
        "controlnet": ControlNetTilePrior.from_pretrained(paths.controlnet, paths.sd15, device="cpu"),
    }


@dataclass
class PreparedRun:
    """Everything the training and rendering of a run need, built (and checked) before any training."""

    settings: RunSettings
    prompts: RunPrompts
    preset: Preset
    device: torch.device
    out: Path
    reference: Any
    priors: dict[str, Any]
    summary: RunSummary
    should_cancel: Callable[[], bool] | None = None
    """Polled before every training step (True: checkpoint, then TrainingCancelled) and between phases."""

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"

    @property
    def smoke(self) -> bool:
        return self.preset.name == "smoke"


def check_cancelled(should_cancel: Callable[[], bool] | None, where: str) -> None:
    """Between phases that do not poll for themselves: raise RunInterrupted when a cancel was asked for."""
    from .interrupts import RunInterrupted

    if should_cancel is not None and should_cancel():
        raise RunInterrupted(f"interrupted during {where}")


def prepare(settings: RunSettings, should_cancel: Callable[[], bool] | None = None) -> PreparedRun:
    """Validate, record the run, then preprocess the image and load the priors (tiny random ones for smoke)."""
    from .reference.reference import build_reference

    checked = validate(settings)
    prompts, device = checked.prompts, checked.device
    out = Path(settings.out)
    write_record(out, checked.fingerprint)
    summary = RunSummary(
        settings={k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
        prompts=asdict(prompts),
    )
    for warning in prompts.warnings:
        sys.stderr.write(f"warning: {warning}\n")
        summary.notes.append(warning)
    presets = preset(settings.preset, settings.representation).with_seed(settings.seed)
    summary.settings["stage_configs"] = {name: config_to_dict(presets.stage(name)) for name in STAGES}
    if presets.name == "smoke":
        sys.stderr.write(SMOKE_WARNING + "\n")
        summary.notes.append(SMOKE_WARNING)
        from .priors.tiny import build_tiny_models

        models_root = _timed(summary, "tiny_models", device, lambda: build_tiny_models(out / "tiny_models").models_dir)
    else:
        models_root = Path(settings.models_dir)
    reference = None
    if settings.image is None:
        summary.notes.append(TEXT_ONLY_NOTE)
        sys.stderr.write(TEXT_ONLY_NOTE + "\n")
    else:
        reference = _timed(
            summary,
            "preprocess",
            device,
            lambda: build_reference(
                checked.image,
                checked.mask,
                checked.depth,
                depth_model=settings.depth_model,
                rembg_dirs=_rembg_dirs(settings),
                config=_reference_config(settings),
            ),
        )
        reference.save(out / "reference.safetensors")
        summary.outputs["reference"] = str(out / "reference.safetensors")
    check_cancelled(should_cancel, "preprocessing")
    priors = _timed(summary, "load_priors", device, lambda: _load_priors(models_root, settings.video_model))
    check_cancelled(should_cancel, "loading the priors")
    if (
        presets.name == "smoke"
        and len(priors["sd"].tokenizer.encode(prompts.initializer, add_special_tokens=False)) != 1
    ):
        # The tiny tokenizer knows a few dozen words; any prompt should still pass the installation check.
        summary.notes.append(
            f"smoke: initializer {prompts.initializer!r} is unknown to the tiny tokenizer; used 'object'"
        )
        prompts = replace(prompts, initializer="object")
    return PreparedRun(settings, prompts, presets, device, out, reference, priors, summary, should_cancel)


def train_all(run: PreparedRun) -> Any:
    """Textual inversion, then the static, coarse and refine stages through the stage runner; returns the scene."""
    from .training.coarse_stage import CoarseStage, DynamicPriors
    from .training.refine_stage import RefinePriors, RefineStage
    from .training.runner import Callbacks, run_stage
    from .training.static_stage import StaticPriors, StaticStage

    p, priors, resume, summary = run.prompts, run.priors, run.settings.resume, run.summary
    text_only = run.reference is None
    if not text_only:
        token_file = _timed(summary, "textual_inversion", run.device, lambda: _textual_inversion(run))
        summary.outputs["embedding"] = str(token_file)

    def stage(name: str, make: Any) -> Any:
        callbacks = Callbacks(on_progress=_Progress(name, run.out / "previews"), should_cancel=run.should_cancel)
        train = lambda: run_stage(name, make, run.checkpoints, resume, callbacks)  # noqa: E731
        return _timed(summary, name, run.device, train)

    c, device = run.preset, run.device
    zero123 = None if text_only else priors["zero123"]
    static_priors = StaticPriors(priors["sd"], zero123)
    static = stage("static", lambda: StaticStage(c.static, run.reference, static_priors, p.static, device=device))
    coarse_priors = DynamicPriors(priors["video"], zero123)
    coarse = stage(
        "coarse", lambda: CoarseStage(c.coarse, run.reference, static, coarse_priors, p.motion, device=device)
    )
    if text_only:  # the refine stage corrects drift away from a reference image: there is none
        for name in ("static", "coarse"):
            summary.outputs[f"checkpoint_{name}"] = str(run.checkpoints / f"{name}.safetensors")
        return coarse
    refine_priors = RefinePriors(priors["video"], priors["zero123"], priors["controlnet"])
    scene = stage(
        "refine",
        lambda: RefineStage(
            c.refine, run.reference, coarse, refine_priors, p.motion, p.refine, p.token, token_file, device=device
        ),
    )
    for name in STAGES:
        summary.outputs[f"checkpoint_{name}"] = str(run.checkpoints / f"{name}.safetensors")
    return scene


def _textual_inversion(run: PreparedRun) -> Path:
    from .textual_inversion.trainer import train_textual_inversion
    from .training.runner import Callbacks

    p = run.prompts
    embedding_file = run.out / "embeddings" / f"{p.token}.safetensors"
    checkpoint = run.checkpoints / "textual_inversion_latest.safetensors"
    if run.settings.resume and embedding_file.is_file():
        return embedding_file
    config = replace(run.preset.textual_inversion, token=p.token, initializer=p.initializer)
    sd = run.priors["sd"].to(run.device)
    result = train_textual_inversion(
        sd,
        run.reference,
        config,
        output_dir=embedding_file.parent,
        checkpoint_path=checkpoint,
        resume_from=checkpoint if run.settings.resume and checkpoint.is_file() else None,
        callbacks=Callbacks(on_progress=_Progress("textual_inversion"), should_cancel=run.should_cancel),
    )
    sd.to("cpu")
    return result.path


def render_outputs(run: PreparedRun, scene: Any) -> None:
    """The test orbit's videos (grid per channel, one per view, orbit while animating, reference camera)."""
    from .outputs.export import write_video
    from .outputs.render import orbit_grid_video, render_fixed_camera, render_orbit_animating, render_test_orbit
    from .outputs.scene_export import export_scene_glb

    s, summary = run.settings, run.summary
    orbit = replace(
        run.preset.orbit,
        num_views=s.render_views or run.preset.orbit.num_views,
        num_frames=s.render_frames or run.preset.orbit.num_frames,
        resolution=s.render_resolution or run.preset.orbit.resolution,
    )
    render_config = run.preset.refine.render
    scene.to(run.device)
    renders = run.out / "renders"
    channels = ("albedo", "depth", "normal", "mask")
    views = render_test_orbit(scene.field, orbit, channels, scene.occupancy, render_config)
    for channel in channels:
        path = write_video(orbit_grid_video(views[channel]), renders / f"orbit_grid_{channel}.mp4", s.fps)
        summary.outputs[f"orbit_grid_{channel}"] = str(path)
    for v in range(orbit.num_views):
        write_video(views["albedo"][v], renders / f"orbit_albedo_view{v:02d}.mp4", s.fps)
    summary.outputs["orbit_views"] = str(renders / "orbit_albedo_view*.mp4")
    animating = render_orbit_animating(scene.field, orbit, ("albedo",), scene.occupancy, render_config)["albedo"]
    summary.outputs["orbit_animating"] = str(write_video(animating, renders / "orbit_animating_albedo.mp4", s.fps))
    fixed = render_fixed_camera(scene.field, orbit, ("albedo",), scene.occupancy, render_config)["albedo"]
    summary.outputs["reference_view"] = str(write_video(fixed, renders / "reference_view_albedo.mp4", s.fps))
    mesh = replace(run.preset.mesh, num_frames=orbit.num_frames, fps=float(s.fps))
    exported = export_scene_glb(scene.field, run.out / "meshes" / "animated_mesh.glb", mesh, run.device)
    summary.outputs["animated_mesh"] = str(exported.path)
    summary.notes.append(f"animated mesh: {exported.bytes:,} bytes; {exported.note}")


def run(settings: RunSettings, should_cancel: Callable[[], bool] | None = None) -> RunSummary:
    """The whole job: prepare, train, render; returns (and writes) the summary. Raises before any work on bad input.

    `should_cancel` (e.g. `interrupts.cancel_on_signals()`'s flag) is polled before every training step: the
    running stage is checkpointed and `TrainingCancelled` raised; between phases `RunInterrupted` is raised.
    """
    prepared = prepare(settings, should_cancel)
    scene = train_all(prepared)
    check_cancelled(should_cancel, "training (all stages are saved)")
    _timed(prepared.summary, "render", prepared.device, lambda: render_outputs(prepared, scene))
    atomic_write_json(prepared.out / "summary.json", asdict(prepared.summary), indent=2, default=str)
    if prepared.smoke:
        sys.stderr.write(SMOKE_WARNING + "\n")
    return prepared.summary
