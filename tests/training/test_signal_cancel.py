"""A real SIGINT during training: the loop stops between steps and saves the stage (resume: test_loop.py)."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

import pytest

from a124_core.checkpoint import load_checkpoint
from a124_core.interrupts import cancel_on_signals, resume_hint
from a124_core.presets import preset
from a124_core.training.runner import Callbacks, TrainingCancelled, train
from a124_core.training.static_stage import StaticPriors, StaticStage


def _stage(reference, priors, config):
    return StaticStage(config, reference, StaticPriors(priors.sd, priors.zero123), prompt="a panda")


def test_sigint_saves_the_running_stage(panda_reference, tiny_priors, tmp_path):
    config = preset("smoke").static
    config = replace(config, steps=3, loop=replace(config.loop, progress_every=1, preview_every=0))

    def on_progress(done, total, losses, preview):
        if done == 1:
            os.kill(os.getpid(), signal.SIGINT)  # arrives while step 1's callback runs, as a Ctrl+C would

    stage = _stage(panda_reference, tiny_priors, config)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # SIG_IGN in a shell's background job
    with cancel_on_signals(notice=None) as flag, pytest.raises(TrainingCancelled) as info:
        train(stage, Callbacks(on_progress=on_progress, should_cancel=flag), checkpoint_dir=tmp_path)
    assert signal.signal(signal.SIGINT, before) is signal.default_int_handler  # restored on the way out
    assert info.value.step == 1 and info.value.checkpoint == tmp_path / "static_latest.safetensors"
    _, meta = load_checkpoint(info.value.checkpoint)
    assert meta["step"] == 1 and not meta["complete"]
    assert resume_hint(info.value.stage, info.value.step) == (
        "interrupted at static step 1: rerun the same command with --resume"
    )
