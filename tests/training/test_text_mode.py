"""The static stage's text mode (Dream-in-4D Sec. 3.1): MVDream + the 2D prior, the render schedule, the multi-view
term's cameras, a DreamBooth checkpoint as the 2D prior, and the wiring it refuses."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file, save_file

from a124_core.cameras import CameraConfig
from a124_core.multiview_cameras import MultiViewCameraConfig
from a124_core.presets import preset
from a124_core.training.config import DREAM_IN_4D_STATIC_SCHEDULE, RenderPhase, StaticStageConfig
from a124_core.training.runner import train
from a124_core.training.static_stage import MultiViewViews, StaticPriors, StaticStage, StaticViews
from a124_core.training.terms.base import StepContext
from a124_core.training.terms.multiview_sds import MultiViewSDS, MultiViewTermConfig, without_word
from a124_core.training.view import View
from tests.oracle.multiview import oracle_with_views


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield


@pytest.fixture(scope="module")
def text_priors(tiny_models):
    from a124_core.priors.mvdream import MVDreamPrior
    from a124_core.priors.sd import StableDiffusionPrior

    mvdream = MVDreamPrior.from_pretrained(tiny_models.mvdream, device="cpu", tokenizer_dir=tiny_models.clip_tokenizer)
    return StaticPriors(sd=StableDiffusionPrior.from_pretrained(tiny_models.sd21, device="cpu"), mvdream=mvdream)


def _context(images, cameras, generator) -> StepContext:
    view = View(cameras, None, "albedo", None, 1.0, torch.ones(3))
    render = {"rgb": images.permute(0, 2, 3, 1)}
    return StepContext(0, 0.5, True, view, render, True, field=None, generator=generator, render_view=None)


def test_the_term_scores_each_view_against_its_own_camera():
    """With the exact oracle the true renders cost nothing; the same renders handed over in another order than their
    cameras (each group rolled by one view) cost a lot: the term reads the cameras in the order the views were
    rendered."""
    oracle, views, truth = oracle_with_views(groups=2)
    term = MultiViewSDS(oracle, MultiViewTermConfig(), "spheres")
    term.build()
    gen = torch.Generator().manual_seed(0)
    exact = float(term.losses(_context(truth, views.cameras, gen))["mvdream"])
    rolled = truth.reshape(2, 4, *truth.shape[1:]).roll(1, dims=1).reshape(truth.shape)
    wrong = float(term.losses(_context(rolled, views.cameras, gen))["mvdream"])
    assert exact < 1e-6 and wrong > 100.0, (exact, wrong)
    assert oracle.invalid_cameras == 0
    off = replace(_context(truth, views.cameras, gen), sds=False)
    assert term.losses(off) == {}


def test_text_mode_follows_the_render_schedule(text_priors):
    """Smoke sizes: 8 views (two groups) at 16 px for two steps, then 4 views at 32 px; each group shares its
    elevation, FOV and distance and sits at azimuths 90 deg apart; MVDream and SD2.1-base both score every step."""
    schedule = (RenderPhase(0, 16, 8), RenderPhase(2, 32, 4))
    config = replace(preset("smoke").static, steps=4, render_schedule=schedule)
    stage = StaticStage(config, None, text_priors, "a panda")
    assert isinstance(stage.views, MultiViewViews) and [t.name for t in stage.terms][:2] == ["mvdream", "sd"]
    seen, sizes = [], []
    stage.view_observers.append(seen.append)
    render = stage.render_view
    stage.render_view = lambda view, size, **kw: sizes.append(size) or render(view, size, **kw)
    scene = train(stage)
    assert [len(v.cameras) for v in seen] == [8, 8, 4, 4] and sizes == [(16, 16)] * 2 + [(32, 32)] * 2
    for view in seen:
        cams = view.cameras
        for group in range(len(cams) // 4):
            g = slice(4 * group, 4 * group + 4)
            for values in (cams.polar_deg[g], cams.fov_y_deg[g], cams.radius[g]):
                assert torch.allclose(values, values[0].expand(4))
            steps = torch.remainder(cams.azimuth_deg[g].diff(), 360.0)
            assert torch.allclose(steps, torch.full_like(steps, 90.0), atol=1e-3)
            assert 60.0 <= float(cams.polar_deg[4 * group]) <= 90.0  # elevation in [0, 30]
    assert scene.stage_config["render_schedule"] == [{"from_step": 0, "size": 16, "batch": 8},
                                                     {"from_step": 2, "size": 32, "batch": 4}]  # fmt: skip


def test_dream_in_4d_preset_is_the_papers_static_stage():
    s = preset("dream-in-4d").static
    assert s.render_schedule == DREAM_IN_4D_STATIC_SCHEDULE == (RenderPhase(0, 64, 8), RenderPhase(5000, 256, 4))
    assert s.steps == 10000 and s.mvdream.weight == 1.0 and s.sd.weight == 1.0
    assert s.mvdream.sds.guidance_scale == 50.0 and s.sd.sds.guidance_scale == 100.0 and s.sd.sds.t_range == (0.2, 0.6)
    assert s.mvdream.cameras == MultiViewCameraConfig() and s.mvdream.sds.recon_std_rescale == 0.5
    assert s.field.grid.finest_resolution == 4096 and s.prompt_suffix == "" and "bad anatomy" in s.negative_prompt
    assert s.render_phase(4999) == RenderPhase(0, 64, 8) and s.render_phase(5000) == RenderPhase(5000, 256, 4)
    assert StaticStageConfig().render_phase(7, group=4) == RenderPhase(0, 128, 4)  # Animate124: one view or group


def test_sd_only_text_mode_keeps_one_view_per_step(tiny_models, text_priors):
    stage = StaticStage(replace(preset("smoke").static, steps=1), None, StaticPriors(sd=text_priors.sd), "a panda")
    assert isinstance(stage.views, StaticViews) and stage.phase == RenderPhase(0, 32, 1)
    assert [t.name for t in stage.terms] == ["sd", "regularisers"]


def test_refused_wiring(text_priors, panda_reference):
    smoke = preset("smoke").static
    with pytest.raises(ValueError, match="text mode"):
        StaticStage(smoke, panda_reference, text_priors, "a panda")
    with pytest.raises(ValueError, match="multiples of the multi-view prior's 4 views"):
        StaticStage(replace(smoke, render_schedule=(RenderPhase(0, 16, 6),)), None, text_priors, "a panda")
    with pytest.raises(ValueError, match="start at step 0"):
        replace(smoke, render_schedule=(RenderPhase(5, 16, 4),))
    with pytest.raises(ValueError, match="increasing"):
        replace(smoke, render_schedule=(RenderPhase(0, 16, 4), RenderPhase(0, 32, 4)))
    cameras = MultiViewCameraConfig(num_views=2)
    with pytest.raises(ValueError, match="num_views=4"):
        StaticStage(replace(smoke, mvdream=MultiViewTermConfig(cameras=cameras)), None, text_priors, "a panda")
    with pytest.raises(ValueError, match="prompt naming the object"):
        StaticStage(smoke, None, text_priors, "  ")
    assert CameraConfig().reference_azimuth_deg == 0.0 and MultiViewTermConfig().front_azimuth_deg == 90.0


def test_a_dreambooth_checkpoint_is_the_2d_prior(tiny_models, text_priors, tmp_path):
    """A DreamBooth model is an SD checkpoint with fine-tuned UNet weights: the pack's SD loader reads the file
    (its SD2.1-base config folder found from the text tower), the fine-tuned weights are the ones used, and the
    multi-view prior gets the prompt without the subject's identifier."""
    from a124_core.pipeline.models import MVDREAM_FILE, ModelPaths
    from a124_core.priors.sd import StableDiffusionPrior

    state = load_file(tiny_models.sd21_single_file)
    gen = torch.Generator().manual_seed(5)
    tuned = {k: v + 0.05 * torch.randn(v.shape, generator=gen) if k.startswith("model.diffusion_model.") else v
             for k, v in state.items()}  # fmt: skip
    file = tmp_path / "dreambooth-sks-dog.safetensors"
    save_file(tuned, str(file))
    paths = ModelPaths.from_models_dir(tiny_models.models_dir, sd=file, mvdream=MVDREAM_FILE, text_only=True)
    assert paths.sd == file and paths.sd_config == tiny_models.sd21_config_dir and paths.mvdream == tiny_models.mvdream
    assert paths.missing_files() == [] and set(paths.used()) == {"sd", "video", "mvdream"}
    dreambooth = StableDiffusionPrior.from_pretrained(paths.sd, device="cpu", config_dir=paths.sd_config)
    conv_in = dreambooth.unet.conv_in.weight
    assert torch.equal(conv_in, tuned["model.diffusion_model.input_blocks.0.0.weight"].to(conv_in.dtype))
    assert not torch.equal(conv_in, text_priors.sd.unet.conv_in.weight)
    priors = StaticPriors(sd=dreambooth, mvdream=text_priors.mvdream)
    config = replace(preset("smoke").static, steps=2, render_schedule=(RenderPhase(0, 16, 4),))
    stage = StaticStage(config, None, priors, "a sks dog", subject_word="sks")
    assert [t.prompt for t in stage.terms[:2]] == ["a dog, 8k, good quality", "a sks dog, 8k, good quality"]
    assert all(torch.isfinite(p).all() for p in train(stage).field.parameters())
    assert without_word("A Sks dog, running", "sks") == "A dog, running" and without_word("a dog", None) == "a dog"
