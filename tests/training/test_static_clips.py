"""Dream-in-4D's clips: one static camera, F evenly spaced frames over L ~ U[0.8, 1] of the animation starting at
U[0, 1 - L]; clips forced to start at t = 0 only with a reference image."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from a124_core.cameras import CameraConfig
from a124_core.training.representations.static_clips import StaticCameraClips
from a124_core.training.terms.video_x0 import StaticClipConfig


def _stage(reference):
    generator = torch.Generator().manual_seed(0)
    return SimpleNamespace(
        rand=lambda: float(torch.rand((), generator=generator)),
        generator=generator,
        reference=reference,
        config=SimpleNamespace(camera=CameraConfig()),
        draw_view=lambda cameras, times: SimpleNamespace(cameras=cameras, times=times),
    )


@pytest.mark.parametrize("reference", [None, object()])
def test_clips_are_static_evenly_spaced_and_as_long_as_the_paper_says(reference):
    sampler, stage = StaticCameraClips(StaticClipConfig()), _stage(reference)
    lengths, starts, at_zero = [], [], 0
    for _ in range(400):
        view, starts_at_zero = sampler.draw(stage)
        t = view.times
        assert t.shape == (24,) and (t >= 0).all() and (t <= 1).all()
        gaps = t[1:] - t[:-1]
        torch.testing.assert_close(gaps, gaps[:1].expand(23), rtol=0, atol=1e-6)
        assert torch.equal(view.cameras.polar_deg, view.cameras.polar_deg[:1].expand(24)), "one static camera"
        assert torch.equal(view.cameras.azimuth_deg, view.cameras.azimuth_deg[:1].expand(24))
        lengths.append(float(t[-1] - t[0]))
        starts.append(float(t[0]))
        at_zero += starts_at_zero
        assert starts_at_zero == (float(t[0]) == 0.0)
    assert min(lengths) >= 0.8 - 1e-6 and max(lengths) <= 1 + 1e-6 and max(lengths) - min(lengths) > 0.15
    assert max(starts) > 0.1
    if reference is None:
        assert at_zero == 0, "text-to-4D: no reference image, no clip forced to t = 0"
    else:
        assert 40 <= at_zero <= 120, "about 20 % of the clips start at the reference image's moment"


def test_bad_clip_settings_are_refused():
    for bad in ({"num_frames": 1}, {"length": (0.9, 0.8)}, {"length": (0.0, 1.0)}, {"p_start_zero": 1.5}):
        with pytest.raises(ValueError, match="Clips need"):
            StaticClipConfig(**bad)
