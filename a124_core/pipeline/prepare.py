"""Everything before training: validate, record the run, preprocess the image, load the priors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..console import timed
from ..presets import Preset, preset
from ..prompts import RunPrompts
from ..run_record import write_record
from ..training.config import config_to_dict
from ..training.scene import STAGES
from .models import load_priors
from .settings import SMOKE_WARNING, TEXT_ONLY_NOTE, RunSettings, RunSummary
from .validate import CheckedInputs, model_paths, reference_config, rembg_dirs, validate


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

    def timed(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run one phase, recording its seconds and peak memory in the summary."""
        return timed(self.summary.stage_seconds, self.summary.peak_memory_gb, name, self.device, fn)


def check_cancelled(should_cancel: Callable[[], bool] | None, where: str) -> None:
    """Between phases that do not poll for themselves: raise RunInterrupted when a cancel was asked for."""
    from ..interrupts import RunInterrupted

    if should_cancel is not None and should_cancel():
        raise RunInterrupted(f"interrupted during {where}")


def _summary(settings: RunSettings, checked: CheckedInputs, presets: Preset) -> RunSummary:
    summary = RunSummary(
        settings={k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
        prompts=asdict(checked.prompts),
    )
    summary.settings["stage_configs"] = {name: config_to_dict(presets.stage(name)) for name in STAGES}
    for warning in checked.prompts.warnings:
        sys.stderr.write(f"warning: {warning}\n")
        summary.notes.append(warning)
    return summary


def _build_reference(run: PreparedRun, checked: CheckedInputs) -> Any:
    """The preprocessed reference image (saved beside the checkpoints), None for text-to-4D."""
    from ..reference.reference import build_reference

    settings = run.settings
    if settings.image is None:
        run.summary.notes.append(TEXT_ONLY_NOTE)
        sys.stderr.write(TEXT_ONLY_NOTE + "\n")
        return None
    reference = run.timed(
        "preprocess",
        lambda: build_reference(
            checked.image,
            checked.mask,
            checked.depth,
            depth_model=settings.depth_model,
            rembg_dirs=rembg_dirs(settings),
            config=reference_config(settings),
        ),
    )
    reference.save(run.out / "reference.safetensors")
    run.summary.outputs["reference"] = str(run.out / "reference.safetensors")
    return reference


def prepare(settings: RunSettings, should_cancel: Callable[[], bool] | None = None) -> PreparedRun:
    """Validate, record the run, then preprocess the image and load the priors (tiny random ones for smoke)."""
    checked = validate(settings)
    out = Path(settings.out)
    write_record(out, checked.fingerprint)
    presets = preset(settings.preset, settings.representation).with_seed(settings.seed)
    run = PreparedRun(
        settings, checked.prompts, presets, checked.device, out, None, {}, _summary(settings, checked, presets)
    )
    run.should_cancel = should_cancel
    if run.smoke:
        sys.stderr.write(SMOKE_WARNING + "\n")
        run.summary.notes.append(SMOKE_WARNING)
        from ..priors.tiny import build_tiny_models

        models_root = run.timed("tiny_models", lambda: build_tiny_models(out / "tiny_models").models_dir)
    else:
        models_root = Path(settings.models_dir)
    run.reference = _build_reference(run, checked)
    check_cancelled(should_cancel, "preprocessing")
    paths = model_paths(settings, models_root)
    run.priors = run.timed("load_priors", lambda: load_priors(paths))
    check_cancelled(should_cancel, "loading the priors")
    initializer = run.prompts.initializer
    if run.smoke and len(run.priors["sd"].tokenizer.encode(initializer, add_special_tokens=False)) != 1:
        # The tiny tokenizer knows a few dozen words; any prompt should still pass the installation check.
        run.summary.notes.append(f"smoke: initializer {initializer!r} is unknown to the tiny tokenizer; used 'object'")
        run.prompts = replace(run.prompts, initializer="object")
    return run


__all__ = ["PreparedRun", "check_cancelled", "prepare"]
