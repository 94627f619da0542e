"""Fidelity fixes found by the SPEC review: prior aspect, refine condition, ControlNet timestep, first-frame rule."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from a124_core.guidance.sds import SDSConfig, render_shape, x0_reconstruction
from a124_core.presets import preset
from a124_core.rendering.occupancy import OccupancyConfig, OccupancyGrid
from a124_core.training.coarse_stage import CoarseStage, DynamicPriors
from a124_core.training.config import RefineStageConfig
from a124_core.training.refine_stage import RefinePriors, RefineStage
from a124_core.training.runner import Callbacks, train
from a124_core.training.scene import Scene
from tests.oracle import setup
from tests.oracle.priors import ImagePoseOracle, VideoOracle


def _spy_encoder(prior):
    seen = []
    encode = prior.encode_images

    def spy(images):
        seen.append(tuple(images.shape))
        return encode(images)

    prior.encode_images = spy
    return seen


def _coarse(static_scene, video, zero123, **config):
    priors = DynamicPriors(video=video, zero123=zero123)
    stage = CoarseStage(setup.coarse_config(8, **config), setup.reference(), static_scene, priors, "balls move")
    return setup.watch(stage, video, zero123)


@pytest.fixture(scope="module")
def static_scene():
    from a124_core.training.static_stage import StaticStage

    return train(StaticStage(setup.static_config(4), setup.reference()))


def test_video_prior_gets_frames_at_its_aspect_and_zero123_a_square(static_scene):
    video, zero123 = VideoOracle(size=(40, 72)), ImagePoseOracle()
    video_seen, zero_seen = _spy_encoder(video), _spy_encoder(zero123)
    stage = _coarse(static_scene, video, zero123, time=replace(setup.DYNAMIC["time"], alpha=1.0, p_mirror=0.0))
    assert stage.render_shape == render_shape(32, (40, 72)) == (18, 32)
    renders = []
    render = stage.render_view
    stage.render_view = lambda view, size, *a, **k: renders.append(size) or render(view, size, *a, **k)
    train(stage)
    assert video_seen and all(shape == (4, 3, 40, 72) for shape in video_seen)
    assert (18, 32) in renders, "clips are rendered at the prior's aspect, not squashed from squares"
    assert zero_seen and all(shape[-1] == shape[-2] for shape in zero_seen), "Zero123 sees the centred square"


def test_refine_refuses_a_refined_scene(static_scene, tmp_path):
    coarse = train(_coarse(static_scene, None, None))
    refined = Scene(coarse.field, coarse.occupancy, "refine", complete=True)
    config = setup.refine_config(2)
    with pytest.raises(ValueError, match="needs the coarse stage's result.*refine stage"):
        RefineStage(config, setup.reference(), refined, RefinePriors(), "x", token_prompt="a x")
    RefineStage(config, setup.reference(), coarse, RefinePriors(), "x", token_prompt="a x")  # the coarse one is fine


def test_controlnet_frames_share_one_timestep():
    assert RefineStageConfig().controlnet.sds.shared_timestep and not preset("paper").coarse.video.sds.shared_timestep
    prior = VideoOracle()  # any prior: the timestep draw is what is tested
    prior.kind, prior.encode_images = None, lambda images: images * 2 - 1
    prior.predict_noise = lambda z, t, cond, s: torch.zeros_like(z)
    images = torch.rand(6, 3, 8, 8)
    for shared, distinct in ((True, 1), (False, 6)):
        gen = torch.Generator().manual_seed(0)
        config = SDSConfig(t_range=(0.0, 1.0), shared_timestep=shared)
        out = x0_reconstruction(prior, images, None, config, 1.0, 0, gen)
        assert len(set(out["t"].tolist())) == distinct


@pytest.mark.parametrize("rule", ["clip_start", "schedule"])
def test_first_frame_supervision_follows_the_clip_start(static_scene, rule):
    video, zero123 = VideoOracle(), ImagePoseOracle()
    stage = _coarse(static_scene, video, zero123, first_frame_supervision=rule, time=replace(setup.DYNAMIC["time"]))
    stage = replace_steps(stage, 40)
    starts = []
    stage.view_observers.append(lambda view: starts.append(bool(view.times[0] == 0)))
    steps = []
    train(stage, Callbacks(on_progress=lambda step, total, losses, preview: steps.append(losses)))
    sds_steps = [losses for losses in steps if "video" in losses]
    assert len(sds_steps) == len(starts)
    for losses, starts_at_zero in zip(sds_steps, starts):
        assert ("zero123" in losses) == starts_at_zero
        assert ("rgb" in losses) == (starts_at_zero and rule == "clip_start")
    if rule == "clip_start":
        assert len(sds_steps) == 40 and any(starts) and not all(starts)
    else:
        assert [i for i, losses in enumerate(steps) if "video" not in losses] == [
            i for i in range(40) if stage.config.is_reference_step(i)
        ]


def replace_steps(stage, steps):
    stage.config = replace(stage.config, steps=steps, loop=replace(stage.config.loop, progress_every=1))
    return stage


def test_occupancy_slots_refresh_over_the_span_they_serve():
    grid = OccupancyGrid(OccupancyConfig(resolution=4), time_slots=5)
    gen = torch.Generator().manual_seed(0)
    times = [grid.refresh_time(2, gen) for _ in range(400)]
    assert min(times) >= 0.5 - 0.125 and max(times) <= 0.5 + 0.125 and max(times) - min(times) > 0.2
    assert all(grid.slot_of(t) == 2 for t in times), "a slot is refreshed only at the times that look it up"
    fixed = OccupancyGrid(OccupancyConfig(resolution=4, slot_span=False), time_slots=5)
    assert {fixed.refresh_time(2, gen) for _ in range(10)} == {0.5}
