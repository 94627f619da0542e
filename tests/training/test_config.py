"""Stage configs carry the paper numbers (SPEC 1, 5-7); presets and JSON round trips."""

from __future__ import annotations

import json

import pytest

from a124_core.training.config import (
    PRESETS,
    CoarseStageConfig,
    LoopConfig,
    RefineStageConfig,
    StaticStageConfig,
    config_from_dict,
    config_to_dict,
    preset,
)


def test_paper_defaults():
    s, c, r = StaticStageConfig(), CoarseStageConfig(), RefineStageConfig()
    assert (s.steps, c.steps, r.steps) == (5000, 10000, 5000)
    assert s.seed == 3407 and s.render_size == 128 and s.betas == (0.9, 0.99) and s.adam_eps == 1e-15
    assert s.field.lr_grid == 1e-2 and s.field.lr_mlp == 1e-3
    assert (s.sd.guidance_scale, s.sd.t_range, s.lambda_sd) == (100.0, (0.2, 0.6), 1.0)
    assert (s.zero123.guidance_scale, s.zero123.t_range, s.lambda_zero123) == (5.0, (0.2, 0.6), 40.0)
    assert (s.shading.p_textureless, s.shading.normal_until, s.shading.ambient_range) == (0.2, 0.2, (0.1, 1.0))
    w = s.weights
    assert (w.rgb, w.mask, w.depth, w.opacity_entropy, w.orientation, w.normal_tv, w.normal_blur, w.temporal_tv) == (
        5.0,
        0.5,
        0.01,
        1e-3,
        1e-2,
        0.5,
        0.5,
        0.1,
    )
    assert (s.reference_warmup, s.reference_every) == (100, 4)
    assert (c.num_knots, c.time.num_frames, c.time.lattice, c.time.alpha, c.p_moving_camera) == (64, 16, 256, 0.2, 0.9)
    assert (c.video.guidance_scale, c.video.t_range, c.video.grad_clip, c.tv_points) == (
        100.0,
        (0.02, 0.98),
        1.0,
        100_000,
    )
    assert c.shading.p_textureless == 0.2 and c.shading.normal_until == 0.0
    assert (r.controlnet.guidance_scale, r.controlnet.t_range, r.lambda_controlnet) == (7.5, (0.2, 0.8), 1.0)
    assert r.controlnet_size == 1024 and r.control_frames == (0, 8) and r.shading.p_textureless == 0.0
    assert s.prompt_suffix == ", 8k, good quality" and c.prompt_suffix == ", high-resolution, 8k, good quality"


def test_presets_round_trip_through_json():
    for name in PRESETS:
        p = preset(name)
        for config in (p.static, p.coarse, p.refine):
            data = json.loads(json.dumps(config_to_dict(config)))
            assert config_from_dict(type(config), data) == config


def test_fast_and_smoke_are_cheaper():
    paper, fast, smoke = preset("paper"), preset("fast"), preset("smoke")
    for stage in ("static", "coarse", "refine"):
        assert getattr(smoke, stage).steps < getattr(fast, stage).steps < getattr(paper, stage).steps
    assert fast.refine.controlnet_size == 512
    assert smoke.static.render_size <= 64 and smoke.coarse.num_knots < paper.coarse.num_knots
    assert smoke.refine.control_frames == (0, smoke.refine.time.num_frames // 2)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: preset("quick"), "Unknown preset"),
        (lambda: StaticStageConfig(steps=0), "steps"),
        (lambda: RefineStageConfig(control_frames=(0, 16)), "control_frames"),
        (lambda: LoopConfig(max_bad_steps=0), "max_bad_steps"),
        (lambda: config_from_dict(StaticStageConfig, {"stepz": 3}), "stepz"),
    ],
)
def test_bad_configs(build, match):
    with pytest.raises(ValueError, match=match):
        build()
