"""The training loop shared by the three stages: progress + preview, cancellation, checkpoints, resume, NaN guard.

Per step: check cancellation, refresh the occupancy grid when due, compute the stage's weighted losses, backprop,
and update only when the loss and every gradient are finite (one host sync per step for that decision; losses
are read as floats only when progress is reported). K non-finite steps in a row stop with `NonFiniteLossError`.
Checkpoints are atomic safetensors files: the scene plus optimizer, RNG states (global and the stage's
generator), step and config, so a resumed run ends bit-identical to an uninterrupted one on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..checkpoint import load_checkpoint
from .scene import Scene
from .stage_base import TrainingStage


class TrainingCancelled(Exception):
    """Raised after the user cancelled; `checkpoint` is the file to resume from (None without checkpoint_dir)."""

    def __init__(self, stage: str, step: int, checkpoint: Path | None):
        where = f"saved to {checkpoint}" if checkpoint else "not saved (no checkpoint_dir was given)"
        super().__init__(f"{stage} stage cancelled at step {step}; checkpoint {where}")
        self.stage, self.step, self.checkpoint = stage, step, checkpoint


class NonFiniteLossError(RuntimeError):
    """K steps in a row had a non-finite loss or gradient."""


@dataclass
class Callbacks:
    """Hooks the loop calls; all optional."""

    on_progress: Callable[[int, int, dict[str, float], Tensor | None], None] | None = None
    """(steps done, total steps, losses as floats, preview [H, W, 3] in [0, 1] or None)."""
    should_cancel: Callable[[], bool] | None = None
    """Checked before every step; True saves a checkpoint and raises TrainingCancelled."""


def checkpoint_path(checkpoint_dir: Path, stage: str, final: bool = False) -> Path:
    """`<dir>/<stage>_latest.safetensors` (rolling, overwritten atomically) or `<dir>/<stage>.safetensors`."""
    return Path(checkpoint_dir) / (f"{stage}.safetensors" if final else f"{stage}_latest.safetensors")


def save_training_checkpoint(stage: TrainingStage, path: Path, step: int) -> Path:
    """Scene + optimizer + RNG + config at `step` steps done."""
    stage.scene.step = step
    stage.scene.complete = step >= stage.config.steps
    stage.scene.stage_config = stage.stage_config_dict()
    tensors, meta = stage.training_state()
    return stage.scene.save(path, tensors, meta)


def _grads_finite(params: list[torch.nn.Parameter]) -> Tensor:
    flags = [torch.isfinite(p.grad).all() for p in params if p.grad is not None]
    return torch.stack(flags).all() if flags else torch.ones((), dtype=torch.bool)


def _non_finite_terms(losses: dict[str, Tensor]) -> list[str]:
    return [k for k, v in losses.items() if not bool(torch.isfinite(v.detach()).all())]


def train(
    stage: TrainingStage,
    callbacks: Callbacks | None = None,
    checkpoint_dir: str | Path | None = None,
    resume_from: str | Path | None = None,
) -> Scene:
    """Run `stage` to its last step and return its scene (also written to `<checkpoint_dir>/<stage>.safetensors`).

    Raises:
        TrainingCancelled: `should_cancel()` returned True (a checkpoint was written first).
        NonFiniteLossError: `config.loop.max_bad_steps` non-finite steps in a row.
        ValueError: `resume_from` does not fit this stage / config (raised before any step).
    """
    callbacks = callbacks or Callbacks()
    loop = stage.config.loop
    total = stage.config.steps
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume_from is not None:
        tensors, meta = load_checkpoint(resume_from)
        stage.load_training_state(tensors, meta, str(resume_from))
    params = stage.trainable_parameters()
    stage.attach()
    try:
        for step in range(stage.step, total):
            if callbacks.should_cancel is not None and callbacks.should_cancel():
                path = (
                    save_training_checkpoint(stage, checkpoint_path(ckpt_dir, stage.name), step) if ckpt_dir else None
                )
                raise TrainingCancelled(stage.name, step, path)
            stage.before_step(step)
            stage.optimizer.zero_grad(set_to_none=True)
            losses = stage.compute_losses(step)
            loss = torch.stack([v.reshape(()) for v in losses.values()]).sum()
            loss.backward()
            if bool(torch.isfinite(loss.detach()) & _grads_finite(params)):
                stage.optimizer.step()
                stage.bad_steps = 0
            else:
                stage.optimizer.zero_grad(set_to_none=True)
                stage.bad_steps += 1
                if stage.bad_steps >= loop.max_bad_steps:
                    bad = _non_finite_terms(losses) or ["(losses finite; a gradient was not)"]
                    raise NonFiniteLossError(
                        f"{stage.name} stage: {stage.bad_steps} non-finite steps in a row, the last at step {step}; "
                        f"non-finite terms: {', '.join(bad)}. Lower the learning rates or guidance scales, or resume "
                        f"from the last checkpoint."
                    )
            stage.step = step + 1
            done = step + 1
            if callbacks.on_progress is not None and (done % loop.progress_every == 0 or done == total):
                preview = (
                    stage.preview()
                    if loop.preview_every and (done % loop.preview_every == 0 or done == total)
                    else None
                )
                values = {k: float(v.detach()) for k, v in losses.items()}
                values["total"] = float(loss.detach())
                callbacks.on_progress(done, total, values, preview)
            if ckpt_dir is not None and loop.checkpoint_every and done % loop.checkpoint_every == 0 and done < total:
                save_training_checkpoint(stage, checkpoint_path(ckpt_dir, stage.name), done)
    finally:
        stage.release()
    stage.scene.step = stage.step
    stage.scene.complete = True
    stage.scene.stage_config = stage.stage_config_dict()
    if ckpt_dir is not None:
        save_training_checkpoint(stage, checkpoint_path(ckpt_dir, stage.name, final=True), stage.step)
    return stage.scene


__all__ = [
    "Callbacks",
    "NonFiniteLossError",
    "TrainingCancelled",
    "checkpoint_path",
    "save_training_checkpoint",
    "train",
]
