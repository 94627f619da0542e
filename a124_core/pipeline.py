"""The whole job without ComfyUI: preprocess -> textual inversion -> static -> coarse -> refine -> render.

Everything is validated before the first model loads: the image, the prompt, the preset, the output folder,
the render settings and (unless the smoke preset builds tiny random priors) every model file. Each stage
writes its checkpoint into `<out>/checkpoints/`; `resume=True` skips finished stages and continues an
interrupted one from its last checkpoint.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .prompts import RunPrompts, derive_prompts
from .training.config import PRESETS, config_to_dict, preset

SMOKE_WARNING = (
    "SMOKE PRESET: tiny random-weight priors and a tiny grid. This checks that everything runs; "
    "the images it writes are not meaningful."
)
STAGES = ("static", "coarse", "refine")
TI_STEPS = {"paper": 3000, "fast": 1500, "smoke": 3}


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

    image: Path
    prompt: str
    out: Path
    preset: str = "smoke"
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


def validate(settings: RunSettings) -> RunPrompts:
    """All checks that need no model: raises ValueError / FileNotFoundError naming the value and the fix."""
    if settings.preset not in PRESETS:
        raise ValueError(f"Unknown preset {settings.preset!r}; choose one of {', '.join(PRESETS)}.")
    prompts = derive_prompts(
        settings.prompt, settings.static_prompt, settings.token, settings.initializer, settings.refine_prompt
    )
    if not Path(settings.image).is_file():
        raise FileNotFoundError(f"Reference image {settings.image} does not exist.")
    for name in ("render_resolution", "render_frames", "render_views", "fps"):
        value = getattr(settings, name)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be a positive number, got {value}.")
    check_output_folder(Path(settings.out))
    if settings.preset != "smoke":
        if settings.models_dir is None:
            raise ValueError("Presets other than smoke need --models-dir (ComfyUI's models folder with the priors).")
        missing = ModelPaths.from_models_dir(settings.models_dir, settings.video_model).missing_files()
        if missing:
            raise FileNotFoundError("Model files are missing (see README: model files):\n  " + "\n  ".join(missing))
    return prompts


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

            self.preview_dir.mkdir(parents=True, exist_ok=True)
            array = (preview.detach().float().clamp(0, 1).cpu().numpy() * 255).astype("uint8")
            Image.fromarray(array).save(self.preview_dir / f"{self.stage}.png")


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


def _load_priors(models_root: Path, video_model: str, num_frames: int, controlnet_size: int | None) -> dict[str, Any]:
    """Load every prior onto the CPU; each stage moves its own onto the GPU only while it runs."""
    from .priors.controlnet_tile import ControlNetTilePrior
    from .priors.sd import StableDiffusionPrior
    from .priors.video import TextToVideoPrior
    from .priors.zero123 import Zero123Prior

    paths = ModelPaths.from_models_dir(models_root, video_model)
    controlnet_config = ControlNetTilePrior.Config(image_size=controlnet_size)
    return {
        "sd": StableDiffusionPrior.from_pretrained(paths.sd15, device="cpu"),
        "zero123": Zero123Prior.from_pretrained(paths.zero123, device="cpu"),
        "video": TextToVideoPrior.from_pretrained(paths.video, TextToVideoPrior.Config(num_frames=num_frames), "cpu"),
        "controlnet": ControlNetTilePrior.from_pretrained(
            paths.controlnet, paths.sd15, controlnet_config, device="cpu"
        ),
    }


def _train_stage(name: str, make_stage: Callable[[], Any], checkpoints: Path, resume: bool, out: Path):
    from .training.loop import Callbacks, checkpoint_path, train
    from .training.scene import Scene

    final, latest = checkpoint_path(checkpoints, name, final=True), checkpoint_path(checkpoints, name)
    if resume and final.is_file():
        sys.stderr.write(f"[{name}] finished earlier: loading {final}\n")
        return Scene.load(final)
    resume_from = latest if resume and latest.is_file() else None
    stage = make_stage()
    callbacks = Callbacks(on_progress=_Progress(name, out / "previews"))
    return train(stage, callbacks, checkpoint_dir=checkpoints, resume_from=resume_from)


def run(settings: RunSettings) -> RunSummary:
    """Run the whole job; returns (and writes) the summary. Raises before any work on bad input."""
    from dataclasses import replace

    from .outputs.export import write_video
    from .outputs.render import (
        OrbitConfig,
        orbit_grid_video,
        render_fixed_camera,
        render_orbit_animating,
        render_test_orbit,
    )
    from .reference.reference import build_reference
    from .textual_inversion.trainer import TextualInversionConfig, train_textual_inversion
    from .training.coarse_stage import CoarseStage, DynamicPriors
    from .training.refine_stage import RefineStage
    from .training.static_stage import StaticPriors, StaticStage

    prompts = validate(settings)
    out = Path(settings.out)
    device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    summary = RunSummary(
        settings={k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
        prompts=asdict(prompts),
    )
    configs = preset(settings.preset)
    configs = type(configs)(
        *(replace(c, seed=settings.seed) for c in (configs.static, configs.coarse, configs.refine))
    )
    summary.settings["stage_configs"] = {name: config_to_dict(getattr(configs, name)) for name in STAGES}
    smoke_run = settings.preset == "smoke"
    if smoke_run:
        sys.stderr.write(SMOKE_WARNING + "\n")
        summary.notes.append(SMOKE_WARNING)
        from .priors.tiny import build_tiny_models

        models_root = _timed(summary, "tiny_models", device, lambda: build_tiny_models(out / "tiny_models").models_dir)
    else:
        models_root = Path(settings.models_dir)
    checkpoints = out / "checkpoints"

    from PIL import Image

    reference = _timed(summary, "preprocess", device, lambda: build_reference(Image.open(settings.image)))
    reference.save(out / "reference.safetensors")
    summary.outputs["reference"] = str(out / "reference.safetensors")
    priors = _timed(
        summary,
        "load_priors",
        device,
        lambda: _load_priors(
            models_root, settings.video_model, configs.coarse.time.num_frames, configs.refine.controlnet_size
        ),
    )

    if len(priors["sd"].tokenizer.encode(prompts.initializer, add_special_tokens=False)) != 1 and smoke_run:
        # The tiny tokenizer knows a few dozen words; any prompt should still pass the installation check.
        summary.notes.append(
            f"smoke: initializer {prompts.initializer!r} is unknown to the tiny tokenizer; used 'object'"
        )
        prompts = replace(prompts, initializer="object")
    embedding_file = out / "embeddings" / f"{prompts.token}.safetensors"
    ti_checkpoint = checkpoints / "textual_inversion_latest.safetensors"
    ti_config = TextualInversionConfig(
        token=prompts.token, initializer=prompts.initializer, steps=TI_STEPS[settings.preset], seed=settings.seed
    )
    if smoke_run:
        ti_config = replace(ti_config, batch_size=2, micro_batch=2, checkpoint_every=0, preview_every=0)

    def textual_inversion():
        if settings.resume and embedding_file.is_file():
            return embedding_file
        sd = priors["sd"].to(device)
        result = train_textual_inversion(
            sd,
            reference,
            ti_config,
            output_dir=embedding_file.parent,
            checkpoint_path=ti_checkpoint,
            resume_from=ti_checkpoint if settings.resume and ti_checkpoint.is_file() else None,
            progress=_Progress("textual_inversion"),
        )
        sd.to("cpu")
        return result.path

    token_file = _timed(summary, "textual_inversion", device, textual_inversion)
    summary.outputs["embedding"] = str(token_file)

    static = _timed(
        summary,
        "static",
        device,
        lambda: _train_stage(
            "static",
            lambda: StaticStage(
                configs.static,
                reference,
                StaticPriors(priors["sd"], priors["zero123"]),
                prompts.static,
                device=device,
            ),
            checkpoints,
            settings.resume,
            out,
        ),
    )
    coarse = _timed(
        summary,
        "coarse",
        device,
        lambda: _train_stage(
            "coarse",
            lambda: CoarseStage(
                configs.coarse,
                reference,
                static,
                DynamicPriors(priors["video"], priors["zero123"]),
                prompts.motion,
                device=device,
            ),
            checkpoints,
            settings.resume,
            out,
        ),
    )
    scene = _timed(
        summary,
        "refine",
        device,
        lambda: _train_stage(
            "refine",
            lambda: RefineStage(
                configs.refine,
                reference,
                coarse,
                DynamicPriors(priors["video"], priors["zero123"], priors["controlnet"]),
                prompts.motion,
                token_prompt=prompts.refine,
                token_name=prompts.token,
                token_embedding=token_file,
                device=device,
            ),
            checkpoints,
            settings.resume,
            out,
        ),
    )
    for name in STAGES:
        summary.outputs[f"checkpoint_{name}"] = str(checkpoints / f"{name}.safetensors")

    orbit = OrbitConfig(
        num_views=settings.render_views or (4 if smoke_run else 10),
        num_frames=settings.render_frames or (8 if smoke_run else 64),
        resolution=settings.render_resolution or (64 if smoke_run else 400),
    )
    render_config = configs.refine.render

    def render_all() -> None:
        scene.to(device)
        renders = out / "renders"
        channels = ("albedo", "depth", "normal", "mask")
        views = render_test_orbit(scene.field, orbit, channels, scene.occupancy, render_config)
        for channel in channels:
            path = write_video(orbit_grid_video(views[channel]), renders / f"orbit_grid_{channel}.mp4", settings.fps)
            summary.outputs[f"orbit_grid_{channel}"] = str(path)
        for v in range(orbit.num_views):
            write_video(views["albedo"][v], renders / f"orbit_albedo_view{v:02d}.mp4", settings.fps)
        summary.outputs["orbit_views"] = str(renders / "orbit_albedo_view*.mp4")
        animating = render_orbit_animating(scene.field, orbit, ("albedo",), scene.occupancy, render_config)["albedo"]
        summary.outputs["orbit_animating"] = str(
            write_video(animating, renders / "orbit_animating_albedo.mp4", settings.fps)
        )
        fixed = render_fixed_camera(scene.field, orbit, ("albedo",), scene.occupancy, render_config)["albedo"]
        summary.outputs["reference_view"] = str(
            write_video(fixed, renders / "reference_view_albedo.mp4", settings.fps)
        )

    _timed(summary, "render", device, render_all)
    (out / "summary.json").write_text(json.dumps(asdict(summary), indent=2, default=str))
    if smoke_run:
        sys.stderr.write(SMOKE_WARNING + "\n")
    return summary
