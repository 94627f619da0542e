"""Video-to-4D through the real coarse stage: the moving scene's clip (tests/oracle/clip.py) as the reference,
the per-frame image-pose oracle (tests/oracle/clip_priors.py) in Zero123's slot, the static oracle result as the
start, and the held-out measurement: views no step renders, at times between the clip's frames.

The input mutations of the acceptance test (a reversed clip, frames a quarter clip late, masks 4 px off) are
functions of the clip handed to the stage, `CLIP_MUTATIONS`; `video_run` applies `prepare_clip` to its clip, so
`tests/oracle/mutations.py` swaps one in. The Zero123-from-frame-0 mutation patches the library term instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from a124_core.fields.deformation import DeformationConfig
from a124_core.fields.deformation_losses import DisplacementTVConfig
from a124_core.reference import ReferenceClip
from a124_core.training.representations import Deformation
from a124_core.training.time_sampling import TimeSamplingConfig

from . import scenes, setup
from .clip import NUM_FRAMES, render_clip
from .clip_priors import ClipImagePoseOracle
from .test_oracle_deformation import DEFORMATION  # the small deformation field of the oracle runs, 150 steps

STEPS = 150
#: Times between the clip's frames (frame i at i / 23): the field is never supervised there.
HELD_OUT_TIMES = [(i + 0.5) / (NUM_FRAMES - 1) for i in (0, 5, 11, 17, 22)]


def video_config(
    steps: int = STEPS, deformation: DeformationConfig = DEFORMATION, tv: float = 0.0, frames: int = 4, **overrides
):
    """The coarse stage of the oracle runs on the deformation field, `frames` clip frames a step."""
    representation = Deformation(deformation, DisplacementTVConfig(weight=tv))
    time_sampling = TimeSamplingConfig(num_frames=frames, lattice=8 * frames)
    return setup.coarse_config(steps, representation=representation, time=time_sampling, **overrides)


def on_one_thread(run: Callable[[], Any]) -> Any:
    """`run()` with torch on one thread (the oracle runs' measured setting; the cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run()
    finally:
        torch.set_num_threads(threads)


def reversed_clip(clip: ReferenceClip) -> ReferenceClip:
    """The frames in reverse order at the same times (the motion played backwards)."""
    order = torch.arange(len(clip) - 1, -1, -1)
    return _with_frames(clip, order)


def late_clip(clip: ReferenceClip) -> ReferenceClip:
    """Frame i shows the moment of frame i + N/4 (the last frames repeat): the clip a quarter early."""
    order = (torch.arange(len(clip)) + len(clip) // 4).clamp(max=len(clip) - 1)
    return _with_frames(clip, order)


def masks_shifted(clip: ReferenceClip, pixels: int = 4) -> ReferenceClip:
    """Every mask moved `pixels` to the right (the colours stay): a mask video that is off by a few pixels."""
    mask = torch.zeros_like(clip.mask)
    mask[..., pixels:] = clip.mask[..., :-pixels]
    return replace(clip, mask=mask, alpha=mask.clone())


def _with_frames(clip: ReferenceClip, order: torch.Tensor) -> ReferenceClip:
    picked = {k: getattr(clip, k)[order] for k in ("rgb", "alpha", "mask")}
    first = replace(clip.first, rgb=picked["rgb"][0].clone(), mask=picked["mask"][0].clone())
    return replace(clip, **picked, first=first)


CLIP_MUTATIONS = {"clip-reversed": reversed_clip, "frames-quarter-late": late_clip, "masks-shifted-4px": masks_shifted}


def prepare_clip(clip: ReferenceClip) -> ReferenceClip:
    """What the stage is given (unchanged; a mutation replaces this function)."""
    return clip


def video_run(static: Any, steps: int = STEPS, pose: bool = True, **config: Any) -> setup.Measured:
    """Coarse stage from the static oracle scene with the moving scene's clip as the reference; start = static.

    The held-out PSNR is measured at HELD_OUT_TIMES from setup.HELD_OUT views; `oracles['seconds']` is the
    stage's wall time."""
    from a124_core.training.coarse_stage import CoarseStage, DynamicPriors
    from a124_core.training.static_stage import StaticStage

    clip = prepare_clip(render_clip().reference_clip())
    probe = StaticStage(setup.static_config(1), setup.reference(scenes.moving), scene=static)
    start = setup.held_out_psnr(probe, static, scenes.moving, HELD_OUT_TIMES)
    zero123 = ClipImagePoseOracle(clip.times) if pose else None
    stage = CoarseStage(video_config(steps, **config), clip, static, DynamicPriors(zero123=zero123))
    began = time.perf_counter()
    result = setup.run(stage)
    seconds = time.perf_counter() - began
    psnr = setup.held_out_psnr(stage, result, scenes.moving, HELD_OUT_TIMES)
    return setup.Measured(psnr, start, result, {"zero123": zero123, "stage": stage, "seconds": seconds})


__all__ = ["CLIP_MUTATIONS", "HELD_OUT_TIMES", "STEPS", "on_one_thread", "prepare_clip", "video_config", "video_run"]
