"""The one way a stage is trained (CLI, nodes, benchmarks): progress, cancellation, checkpoints, resume, NaN guard.

Per step: check cancellation, refresh the occupancy grid when due, compute the stage's weighted losses, backprop,
and update only when the loss and every gradient are finite (one host sync per step for that decision; losses
are read as floats only when progress is reported). K non-finite steps in a row stop with `NonFiniteLossError`.
Checkpoints are atomic safetensors files: the scene plus optimizer, RNG states (global and the stage's
generator), the terms' state, step and config, so a resumed run ends bit-identical to an uninterrupted one on the
CPU. A cancel request, or an exception raised by the progress callback (ComfyUI's interrupt, Ctrl-C), saves a
checkpoint at the last finished step before it propagates. Textual inversion uses the same `Callbacks` and
`TrainingCancelled`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..checkpoint import load_checkpoint
from .scene import Scene, read_header
from .stage import Stage


class TrainingCancelled(Exception):
    """Raised after the user cancelled; `checkpoint` is the file to resume from (None without a checkpoint path)."""

    def __init__(self, stage: str, step: int, checkpoint: Path | None):
        where = f"saved to {checkpoint}" if checkpoint else "not saved (no checkpoint folder was given)"
        super().__init__(f"{stage} stage cancelled at step {step}; checkpoint {where}")
        self.stage, self.step, self.checkpoint = stage, step, checkpoint


class NonFiniteLossError(RuntimeError):
    """K steps in a row had a non-finite loss or gradient."""


ProgressFn = Callable[[int, int, dict[str, float], "Tensor | None"], None]


@dataclass
class Callbacks:
    """Hooks the runners call; all optional."""

    on_progress: ProgressFn | None = None
    """(steps done, total steps, losses as floats by name with 'total', preview [H, W, 3] in [0, 1] or None)."""
    should_cancel: Callable[[], bool] | None = None
    """Checked before every step; True saves a checkpoint and raises TrainingCancelled."""

    def progress(
        self, done: int, total: int, losses: dict[str, float], preview: Tensor | None, save: Callable
    ) -> None:
        """Report progress; if the callback raises (an interrupt), `save()` a checkpoint first, then re-raise."""
        if self.on_progress is None:
            return
        try:
            self.on_progress(done, total, losses, preview)
        except BaseException:
            save()
            raise

    def cancelled(self) -> bool:
        return self.should_cancel is not None and bool(self.should_cancel())


def checkpoint_path(checkpoint_dir: Path, stage: str, final: bool = False) -> Path:
    """`<dir>/<stage>_latest.safetensors` (rolling, overwritten atomically) or `<dir>/<stage>.safetensors`."""
    return Path(checkpoint_dir) / (f"{stage}.safetensors" if final else f"{stage}_latest.safetensors")


def save_training_checkpoint(stage: Stage, path: Path, step: int) -> Path:
    """Scene + optimizer + RNG + terms' state + config at `step` steps done."""
    scene = stage.sync_scene(step)
    tensors, meta = stage.training_state()
    return scene.save(path, tensors, meta)


def _grads_finite(params: list[torch.nn.Parameter]) -> Tensor:
    flags = [torch.isfinite(p.grad).all() for p in params if p.grad is not None]
    return torch.stack(flags).all() if flags else torch.ones((), dtype=torch.bool)


def _non_finite_terms(losses: dict[str, Tensor]) -> list[str]:
    return [k for k, v in losses.items() if not bool(torch.isfinite(v.detach()).all())]


def training_step(
    stage: Stage, step: int, params: list[torch.nn.Parameter]
) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """One step's work before the update: occupancy refresh when due, the terms' losses, backward. Returns (losses,
    their sum, whether it and every gradient are finite as a 0-d bool tensor: reading it is the step's host sync)."""
    stage.before_step(step)
    stage.optimizer.zero_grad(set_to_none=True)
    losses = stage.compute_losses(step)
    loss = torch.stack([v.reshape(()) for v in losses.values()]).sum()
    loss.backward()
    return losses, loss, torch.isfinite(loss.detach()) & _grads_finite(params)


def train(
    stage: Stage,
    callbacks: Callbacks | None = None,
    checkpoint_dir: str | Path | None = None,
    resume_from: str | Path | None = None,
    parents: dict[str, str] | None = None,
) -> Scene:
    """Run `stage` to its last step and return its scene (also written to `<checkpoint_dir>/<stage>.safetensors`;
    the rolling `<stage>_latest.safetensors` is removed then). `parents` (name -> digest of each input the stage was
    built from, e.g. the static scene) is recorded in every checkpoint, so a resume can tell a stale one.

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

    def save_latest() -> Path | None:
        if ckpt_dir is None:
            return None
        return save_training_checkpoint(stage, checkpoint_path(ckpt_dir, stage.name), stage.step)

    stage.attach()
    parents = dict(parents or {})
    stage.parents = parents
    try:
        for step in range(stage.step, total):
            if callbacks.cancelled():
                raise TrainingCancelled(stage.name, step, save_latest())
            losses, loss, finite = training_step(stage, step, params)
            if bool(finite):
                stage.optimizer.step()
                stage.bad_steps = 0
            else:
                stage.optimizer.zero_grad(set_to_none=True)
                stage.bad_steps += 1
                if stage.bad_steps >= loop.max_bad_steps:
                    bad = _non_finite_terms(losses) or ["(losses finite; a gradient was not)"]
                    raise NonFiniteLossError(
                        f"{stage.name} stage: {stage.bad_steps} non-finite steps in a row, the last at step {step}; "
                        f"non-finite terms: {', '.join(bad)}. Lower the learning rates or guidance scales (the last "
                        f"checkpoint is kept)"
                    )
            stage.step = done = step + 1
            if callbacks.on_progress is not None and (done % loop.progress_every == 0 or done == total):
                due = loop.preview_every and (done % loop.preview_every == 0 or done == total)
                values = {k: float(v.detach()) for k, v in losses.items()}
                values["total"] = float(loss.detach())
                callbacks.progress(done, total, values, stage.preview() if due else None, save_latest)
            if ckpt_dir is not None and loop.checkpoint_every and done % loop.checkpoint_every == 0 and done < total:
                save_latest()
    finally:
        stage.release()
    scene = stage.sync_scene(stage.step)
    if ckpt_dir is not None:
        save_training_checkpoint(stage, checkpoint_path(ckpt_dir, stage.name, final=True), stage.step)
        checkpoint_path(ckpt_dir, stage.name).unlink(missing_ok=True)  # the finished stage's rolling checkpoint
    return scene


def run_stage(
    name: str,
    make_stage: Callable[[], Stage],
    checkpoint_dir: str | Path,
    resume: bool | str | Path = False,
    callbacks: Callbacks | None = None,
    log: Callable[[str], None] | None = None,
    parents: dict[str, str] | None = None,
) -> Scene:
    """Train stage `name` with its checkpoints in `checkpoint_dir` (the CLI's and the nodes' entry point).

    Args:
        make_stage: builds the stage (only called when there is something to train).
        resume: False trains from the start; True loads `<name>.safetensors` when the stage finished earlier on the
            same `parents`, else continues `<name>_latest.safetensors` when it was trained on them; a path continues
            that checkpoint. A checkpoint trained on other inputs (an upstream stage trained again) is not used.
        log: where one line about what was resumed goes (default: stderr).
        parents: name -> digest of each input of the stage (`scene_digest`, a file digest), recorded in its
            checkpoints.
    """
    log = log or (lambda line: sys.stderr.write(line + "\n"))
    final, latest = checkpoint_path(checkpoint_dir, name, final=True), checkpoint_path(checkpoint_dir, name)
    parents = dict(parents or {})
    resume_from: Path | None = None
    if resume is True:
        if final.is_file():
            stale = _stale_inputs(final, parents)
            if not stale:
                log(f"[{name}] finished earlier: loading {final}")
                return Scene.load(final)
            log(f"[{name}] {final.name} was trained on another {', '.join(stale)}: training the {name} stage again")
        if latest.is_file() and not _stale_inputs(latest, parents):
            resume_from = latest
    elif resume:
        resume_from = Path(resume)
    if resume_from is not None:
        log(f"[{name}] continuing from {resume_from}")
    return train(make_stage(), callbacks, checkpoint_dir, resume_from, parents)


def _stale_inputs(checkpoint: Path, parents: dict[str, str]) -> list[str]:
    """The inputs whose digest differs between a checkpoint and this run (every one for a file from before
    digests were recorded: it cannot be trusted)."""
    recorded = read_header(checkpoint).get("parents")
    if recorded is None:
        return sorted(parents)
    return sorted(k for k in set(parents) | set(recorded) if parents.get(k) != recorded.get(k))


__all__ = [
    "Callbacks",
    "NonFiniteLossError",
    "TrainingCancelled",
    "checkpoint_path",
    "run_stage",
    "save_training_checkpoint",
    "train",
    "training_step",
]
