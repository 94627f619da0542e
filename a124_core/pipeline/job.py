"""The whole job of `python -m a124_core run`: prepare, train, render, write the summary."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict

from ..checkpoint import atomic_write_json
from .prepare import check_cancelled, prepare
from .render import render_outputs
from .settings import SMOKE_WARNING, RunSettings, RunSummary
from .train import train_all


def run(settings: RunSettings, should_cancel: Callable[[], bool] | None = None) -> RunSummary:
    """The whole job: prepare, train, render; returns (and writes) the summary. Raises before any work on bad input.

    `should_cancel` (e.g. `interrupts.cancel_on_signals()`'s flag) is polled before every training step: the
    running stage is checkpointed and `TrainingCancelled` raised; between phases `RunInterrupted` is raised.
    """
    if settings.video is not None:  # video-to-4D: its own preprocessing and stages
        from .video import run_video

        return run_video(settings, should_cancel)
    prepared = prepare(settings, should_cancel)
    scene = train_all(prepared)
    check_cancelled(should_cancel, "training (all stages are saved)")
    prepared.timed("render", lambda: render_outputs(prepared, scene))
    atomic_write_json(prepared.out / "summary.json", asdict(prepared.summary), indent=2, default=str)
    if prepared.smoke:
        sys.stderr.write(SMOKE_WARNING + "\n")
    return prepared.summary


__all__ = ["run"]
