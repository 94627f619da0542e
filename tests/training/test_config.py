"""Stage configs carry the paper numbers (SPEC 1, 5-7); presets and JSON round trips."""

from __future__ import annotations

import itertools
import json

import pytest

from a124_core.presets import PRESETS, preset
from a124_core.training.config import (
    CoarseStageConfig,
    LoopConfig,
    RefineStageConfig,
    StaticStageConfig,
    config_from_dict,
    config_to_dict,
)
from a124_core.training.representations import REPRESENTATIONS
from a124_core.training.scene import STAGES


def test_paper_defaults():
    s, c, r = StaticStageConfig(), CoarseStageConfig(), RefineStageConfig()
    assert (s.steps, c.steps, r.steps) == (5000, 10000, 5000)
    assert s.seed == 3407 and s.render_size == 128 and s.betas == (0.9, 0.99) and s.adam_eps == 1e-15
    assert s.field.lr_grid == 1e-2 and s.field.lr_mlp == 1e-3
    assert (s.sd.sds.guidance_scale, s.sd.sds.t_range, s.sd.weight) == (100.0, (0.2, 0.6), 1.0)
    assert (s.zero123.sds.guidance_scale, s.zero123.sds.t_range, s.zero123.weight) == (5.0, (0.2, 0.6), 40.0)
    assert (s.shading.p_textureless, s.shading.normal_until, s.shading.ambient_range) == (0.2, 0.2, (0.1, 1.0))
    rec, reg = s.reconstruction, s.regularisers
    assert (rec.rgb, rec.mask, rec.depth) == (5.0, 0.5, 0.01)
    assert (reg.opacity_entropy, reg.orientation, reg.normal_tv, reg.normal_blur) == (1e-3, 1e-2, 0.5, 0.5)
    tv = c.representation.temporal_tv
    assert c.representation.name == "grid4d" and (tv.weight, tv.points) == (0.1, 100_000)
    assert (s.reference_warmup, s.reference_every) == (100, 4)
    assert c.representation.num_knots == 64
    assert (c.time.num_frames, c.time.lattice, c.time.alpha, c.p_moving_camera) == (16, 256, 0.2, 0.9)
    assert (c.video.sds.guidance_scale, c.video.sds.t_range, c.video.sds.grad_clip) == (100.0, (0.02, 0.98), 1.0)
    assert c.shading.p_textureless == 0.2 and c.shading.normal_until == 0.0
    cn = r.controlnet
    assert (cn.sds.guidance_scale, cn.sds.t_range, cn.weight, cn.sds.image_size) == (7.5, (0.2, 0.8), 1.0, 1024)
    assert cn.frames is None and cn.sds.shared_timestep and r.shading.p_textureless == 0.0
    assert s.prompt_suffix == ", 8k, good quality" and c.prompt_suffix == ", high-resolution, 8k, good quality"
    assert c.first_frame_supervision == "clip_start"


def test_presets_round_trip_through_json():
    for name, representation in itertools.product(PRESETS, REPRESENTATIONS):
        p = preset(name, representation)
        assert p.coarse.representation.name == p.refine.representation.name == representation
        for config in (p.static, p.coarse, p.refine):
            data = json.loads(json.dumps(config_to_dict(config)))
            assert config_from_dict(type(config), data) == config


def test_one_preset_holds_every_setting():
    paper, fast, smoke = preset("paper"), preset("fast"), preset("smoke")
    for stage in ("static", "coarse", "refine"):
        assert smoke.stage(stage).steps < fast.stage(stage).steps < paper.stage(stage).steps
    assert smoke.textual_inversion.steps < fast.textual_inversion.steps < paper.textual_inversion.steps == 3000
    assert fast.refine.controlnet.sds.image_size == 512 and paper.refine.controlnet.sds.image_size == 1024
    # fast's normals (docs/presets.md): forward differences in the dynamic stages only; the paper's are central
    assert {p.stage(s).render.normal_differences for p in (paper,) for s in STAGES} == {"central"}
    assert fast.static.render.normal_differences == "central"
    assert fast.coarse.render.normal_differences == fast.refine.render.normal_differences == "forward"
    assert smoke.static.render_size <= 64
    assert smoke.coarse.representation.num_knots < paper.coarse.representation.num_knots
    assert (paper.orbit.num_views, paper.orbit.num_frames, paper.orbit.resolution) == (10, 64, 400)
    seeded = fast.with_seed(7)
    assert {seeded.stage(s).seed for s in ("static", "coarse", "refine")} == {seeded.textual_inversion.seed} == {7}


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: preset("quick"), "Unknown preset"),
        (lambda: StaticStageConfig(steps=0), "steps"),
        (lambda: CoarseStageConfig(first_frame_supervision="always"), "first_frame_supervision"),
        (lambda: LoopConfig(max_bad_steps=0), "max_bad_steps"),
        (lambda: config_from_dict(StaticStageConfig, {"stepz": 3}), "stepz"),
    ],
)
def test_bad_configs(build, match):
    with pytest.raises(ValueError, match=match):
        build()
