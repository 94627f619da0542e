"""The real coarse stage on the deformation representation with its default guidance (Dream-in-4D's one-step x0
latent + RGB video loss on static-camera clips, the displacement TV on at its phase weight 1000), driven by the video
and image-pose oracles, moves the frozen static scene the way the oracles know; the refine stage on that scene, driven
by the image-control oracle, trains the canonical appearance and keeps every deformation level (issue 24).

Measured: docs/representations.md (and the constants below). Mutations (python -m tests.oracle.mutations
deformation-...): the clip's frames reversed and the canonical frozen in refine (the issue-24 defect) fail the PSNR
bounds, the levels masked again in refine fails the level check; the displacement TV's wiring is tested in
tests/training/test_representations.py (the TV x 0 fails there).

Small on purpose: a 3-level 4D hash grid (finest 16) and a 2 x 32 MLP at lr 1e-2, 4-frame clips at a quarter of the
oracle's Zeroscope-shaped 80 x 144 (20 x 36 renders, the authors' schedule for a wide prior: TV 1000 throughout).
"""

from __future__ import annotations

import pytest
import torch

from a124_core.fields.deformation import DeformationConfig
from a124_core.fields.hash_encoding import HashGridConfig
from a124_core.training.representations import Deformation
from a124_core.training.terms.video_x0 import DreamIn4DVideoConfig, StaticClipConfig

from . import scenes, setup

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

STEPS = 150
REFINE_STEPS = 100
VIDEO_SIZE = (80, 144)
DEFORMATION = DeformationConfig(
    grid=HashGridConfig(num_levels=3, base_resolution=4, finest_resolution=16, log2_hashmap_size=12),
    hidden_dim=32,
    num_hidden_layers=2,
    start_levels=2,
    levels_every=STEPS // 3,
    lr_grid=1e-2,
    lr_mlp=1e-2,
)
#: The deformation representation at its defaults but for the sizes above (the TV weight is the phase's: 1000).
REPRESENTATION = Deformation(DEFORMATION, video=DreamIn4DVideoConfig(clips=StaticClipConfig(num_frames=4)))
#: Held-out PSNR gain over the static start required at each time (the start is right at t = 0 only). Measured
#: 4.4 / 4.9 / 4.7 dB at t = 0.5 / 0.75 / 1, mean +3.0, t = 0 2.6 dB under the start (docs/representations.md: +3.7
#: and -1.8 before the packed compositing; the renders agree to 3e-7, the 150-step fit amplifies rounding). The
#: clip's frames reversed (mutation) scores a mean of -1.2 and t = 0 11.7 dB under the start.
GAIN = {0.5: 4.0, 0.75: 4.0, 1.0: 3.0}
GAIN_MEAN = 2.0
#: How far t = 0 may fall below the start (which is the reference itself there).
T0_DROP_MAX = 3.5
#: Refine: held-out PSNR gain over the coarse scene at t = 0 and over all times (measured 5.9 and 1.7 dB; the canonical
#: frozen, as before issue 24: 0.0 and -2.4 dB). Refine drives the deformation with the ControlNet targets of clip
#: frames 0 and 2 alone (no video prior here), so the late times lose a little motion (t = 1: -1.0 dB).
REFINE_GAIN_T0 = 3.0
REFINE_GAIN_MEAN = 1.0


def one_thread(run):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def deformation_coarse(oracle_static):
    return one_thread(
        lambda: setup.coarse_run(oracle_static.scene, STEPS, video_size=VIDEO_SIZE, representation=REPRESENTATION)
    )


def test_dream_in_4d_guidance_moves_the_frozen_canonical_scene(deformation_coarse):
    result = deformation_coarse
    print("deformation coarse + video + image-pose oracles:", result, "start", result.start)
    video = result.oracles["video"]
    assert video.calls == STEPS and set(video.scales) == {100.0}, "the video term on every step at CFG 100"
    for t, gain in GAIN.items():
        assert result.psnr[t] >= result.start[t] + gain, f"t = {t}: the motion must be learned, not the still start"
    assert setup.mean(result.psnr) >= setup.mean(result.start) + GAIN_MEAN, result
    assert result.psnr[0.0] >= result.start[0.0] - T0_DROP_MAX, "frame 0 must stay the reference"
    assert result.levels[-1] == DEFORMATION.grid.num_levels


def test_refine_trains_the_deformation_scenes_appearance_and_keeps_its_levels(deformation_coarse):
    """The image-control oracle knows the coarse target's geometry and motion with another appearance
    (`scenes.refined`): only a canonical field whose colour trains can meet it; motion cannot recolour."""
    coarse = deformation_coarse.scene
    learned = int(coarse.field.levels)
    result = one_thread(
        lambda: setup.refine_run(coarse, REFINE_STEPS, truth=scenes.refined, representation=REPRESENTATION)
    )
    print("deformation refine + image-control oracle:", result, "start", result.start)
    control = result.oracles["controlnet"]
    assert control.mismatches == 0 and control.matches > REFINE_STEPS // 2, "control = frozen coarse render"
    assert min(result.levels) == learned == DEFORMATION.grid.num_levels, "no refine step masks a learned level"
    assert result.psnr[0.0] >= result.start[0.0] + REFINE_GAIN_T0, "the appearance trained (motion cannot recolour)"
    assert setup.mean(result.psnr) >= setup.mean(result.start) + REFINE_GAIN_MEAN, result
