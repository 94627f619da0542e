"""The deformation representation inside the real stages; text-to-4D without a reference."""

from __future__ import annotations

import pytest
import torch

from a124_core.fields.deformation import ColourTrainedField, DeformationField
from a124_core.fields.deformation_losses import displacement_tv
from a124_core.presets import preset
from a124_core.training.coarse_stage import ClipViews, CoarseStage, DynamicPriors
from a124_core.training.refine_stage import RefinePriors, RefineStage
from a124_core.training.representations.static_clips import StaticCameraClips
from a124_core.training.runner import Callbacks, train
from a124_core.training.scene import Scene
from a124_core.training.static_stage import StaticPriors, StaticStage
from a124_core.training.terms.displacement_tv import DisplacementTV
from a124_core.training.terms.temporal_tv import TemporalTV
from a124_core.training.terms.video_sds import VideoSDS
from a124_core.training.terms.video_x0 import DreamIn4DVideo

from .conftest import parameters_equal


def _deformation_coarse(reference, static, priors, **kwargs):
    config = preset("smoke", "deformation").coarse
    return CoarseStage(config, reference, static, DynamicPriors(priors.video, priors.zero123), "a panda is dancing")


def test_each_representation_lists_its_own_smoothness_term(panda_reference, tiny_priors, smoke_run):
    grid = CoarseStage(preset("smoke").coarse, panda_reference, smoke_run.static)
    deform = _deformation_coarse(panda_reference, smoke_run.static, tiny_priors)
    assert any(isinstance(t, TemporalTV) for t in grid.terms) and not any(
        isinstance(t, DisplacementTV) for t in grid.terms
    )
    assert any(isinstance(t, DisplacementTV) for t in deform.terms)
    assert not any(isinstance(t, TemporalTV) for t in deform.terms)
    assert isinstance(deform.scene.field, DeformationField) and deform.need_displacement and not grid.need_displacement
    # the canonical field is the static one, frozen; only the deformation network is optimised
    assert parameters_equal(deform.scene.field.canonical, smoke_run.static.field)
    trained = {id(p) for p in deform.trainable_parameters()}
    assert not any(id(p) in trained for p in deform.scene.field.canonical.parameters())


def test_deformation_coarse_stage_trains_unmasks_levels_and_round_trips(
    panda_reference, tiny_priors, smoke_run, tmp_path
):
    stage = _deformation_coarse(panda_reference, smoke_run.static, tiny_priors)
    config = stage.config.representation.deformation
    canonical = {k: v.clone() for k, v in stage.scene.field.canonical.state_dict().items()}
    levels = []
    stage.view_observers.append(lambda view: levels.append(int(stage.scene.field.levels)))
    seen = []
    scene = train(stage, Callbacks(on_progress=lambda s, n, losses, p: seen.append(losses)), tmp_path)
    # level unmasking: start_levels at step 0, one more every levels_every steps (smoke: 2, every 2)
    expected = [min(config.start_levels + s // config.levels_every, config.grid.num_levels) for s in range(6)]
    assert levels == expected[: len(levels)] and len(levels) >= 4
    assert all("displacement_tv" in losses and losses["displacement_tv"] >= 0 for losses in seen if "video" in losses)
    assert all(torch.equal(v, canonical[k]) for k, v in scene.field.canonical.state_dict().items()), "canonical frozen"
    assert any(p.abs().sum() > 0 for p in scene.field.mlp[-1].parameters()), "the deformation learned something"
    loaded = Scene.load(tmp_path / "coarse.safetensors")
    assert isinstance(loaded.field, DeformationField) and parameters_equal(loaded.field, scene.field)
    # the refine stage continues a deformation scene with a deformation config, and refuses a grid4d one
    with pytest.raises(ValueError, match="representation but the refine config has grid4d"):
        RefineStage(preset("smoke").refine, panda_reference, loaded, RefinePriors(), "x", token_prompt="a x")
    refine = RefineStage(preset("smoke", "deformation").refine, panda_reference, loaded, RefinePriors(), "x")
    assert isinstance(refine.scene.field, DeformationField)


def test_refine_on_a_deformation_scene_keeps_every_level_and_trains_the_colour(
    panda_reference, tiny_priors, smoke_run
):
    """Issue 24: the refine stage counts its steps from 0; the grid must keep the coarse run's levels (a fresh
    set_progress(0) dropped them to start_levels), and the canonical colour trains while its shape stays."""
    coarse = train(_deformation_coarse(panda_reference, smoke_run.static, tiny_priors))
    learned = int(coarse.field.levels)
    assert learned == coarse.field.deformation_config.grid.num_levels
    priors = RefinePriors(video=tiny_priors.video, controlnet=tiny_priors.controlnet)
    config = preset("smoke", "deformation").refine
    stage = RefineStage(
        config, panda_reference, coarse, priors, "a panda is dancing", token_prompt="a panda is dancing"
    )
    control = next(t for t in stage.terms if t.name == "controlnet")
    assert control.frames == [0, 2], "frames 0 and F / 2 of the representation's clips (F = 4 in smoke)"
    assert isinstance(stage.views, StaticCameraClips) and stage.condition_scene.field.canonical is not None
    assert stage.condition_scene.field.deformation_config.train_canonical == "none", (
        "the condition is the coarse model"
    )
    levels = []
    stage.view_observers.append(lambda view: levels.append(int(stage.scene.field.levels)))
    start = {k: v.clone() for k, v in stage.scene.field.canonical.colour.state_dict().items()}
    refined = train(stage)
    assert levels and min(levels) == learned, levels
    canonical = refined.field.canonical
    assert isinstance(canonical, ColourTrainedField) and parameters_equal(canonical.shape, smoke_run.static.field)
    assert any(not torch.equal(v, start[k]) for k, v in canonical.colour.state_dict().items()), "the colour trained"


def test_deformation_trains_with_dream_in_4d_video_guidance_grid4d_with_animate124s(
    panda_reference, tiny_priors, smoke_run
):
    grid = CoarseStage(
        preset("smoke").coarse, panda_reference, smoke_run.static, DynamicPriors(tiny_priors.video), "a panda dances"
    )
    deform = _deformation_coarse(panda_reference, smoke_run.static, tiny_priors)
    assert type(grid.terms[0]) is VideoSDS and isinstance(grid.views, ClipViews)
    assert isinstance(deform.terms[0], DreamIn4DVideo) and isinstance(deform.views, StaticCameraClips)
    assert deform.render_shape == deform.sds_render_shape(5) == (16, 16), "smoke: half the tiny prior's 32 px"


def test_displacement_tv_is_wired_at_its_phase_weight(panda_reference, tiny_priors, smoke_run):
    """The reported TV is the phase's weight (smoke: 1000) x the TV of the step's own rendered displacement video,
    and its gradient reaches the deformation network (a TV multiplied by 0 fails here)."""
    stage = _deformation_coarse(panda_reference, smoke_run.static, tiny_priors)
    field = stage.scene.field
    with torch.no_grad():
        field.mlp[-1].weight.normal_(std=0.1)
    field.set_progress(10**6)
    captured = {}
    render = stage.render_view

    def spy(view, size, *args, **kwargs):
        out = render(view, size, *args, **kwargs)
        if kwargs.get("displacement"):
            captured["displacement"] = out["displacement"].detach()
        return out

    stage.render_view = spy
    step = next(s for s in range(stage.config.steps) if not stage.is_reconstruction_step(s))
    stage.attach()
    losses = stage.compute_losses(step)
    term = next(t for t in stage.terms if isinstance(t, DisplacementTV))
    assert term.weight(stage.progress(step)) == 1000.0
    expected = 1000.0 * displacement_tv(captured["displacement"], stage.config.render.bound)
    assert float(expected) > 0 and float(losses["displacement_tv"]) == pytest.approx(float(expected), rel=1e-5)
    losses["displacement_tv"].backward()
    assert field.encoder.embeddings.grad.abs().max() > 0 and field.mlp[-1].weight.grad.abs().max() > 0


def test_text_to_4d_without_a_reference(tiny_priors):
    p = preset("smoke")
    static = StaticStage(p.static, None, StaticPriors(sd=tiny_priors.sd), "a high-resolution DSLR image of a panda")
    assert not any(t.name == "reconstruction" for t in static.terms)
    assert not any(static.is_reconstruction_step(s) for s in range(p.static.steps)), "every step is an SDS step"
    scene = train(static)
    coarse = CoarseStage(p.coarse, None, scene, DynamicPriors(video=tiny_priors.video), "a panda is dancing")
    assert [t.name for t in coarse.terms] == ["video", "regularisers", "temporal_tv"]
    assert train(coarse).complete
    deform = CoarseStage(
        preset("smoke", "deformation").coarse, None, scene, DynamicPriors(video=tiny_priors.video), "a panda dances"
    )
    assert [t.name for t in deform.terms] == ["video", "regularisers", "displacement_tv"]
    assert isinstance(deform.terms[0], DreamIn4DVideo)
    with pytest.raises(ValueError, match="Zero123 is conditioned on the reference image"):
        StaticStage(p.static, None, StaticPriors(sd=tiny_priors.sd, zero123=tiny_priors.zero123), "a panda")
    with pytest.raises(ValueError, match="no reference image and no prior"):
        StaticStage(p.static, None)
