"""The deformation representation inside the real stages; text-to-4D without a reference."""

from __future__ import annotations

import pytest
import torch

from a124_core.fields.deformation import DeformationField
from a124_core.presets import preset
from a124_core.training.coarse_stage import CoarseStage, DynamicPriors
from a124_core.training.refine_stage import RefinePriors, RefineStage
from a124_core.training.runner import Callbacks, train
from a124_core.training.scene import Scene
from a124_core.training.static_stage import StaticPriors, StaticStage
from a124_core.training.terms.displacement_tv import DisplacementTV
from a124_core.training.terms.temporal_tv import TemporalTV

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


def test_text_to_4d_without_a_reference(tiny_priors):
    p = preset("smoke")
    static = StaticStage(p.static, None, StaticPriors(sd=tiny_priors.sd), "a high-resolution DSLR image of a panda")
    assert not any(t.name == "reconstruction" for t in static.terms)
    assert not any(static.is_reconstruction_step(s) for s in range(p.static.steps)), "every step is an SDS step"
    scene = train(static)
    coarse = CoarseStage(p.coarse, None, scene, DynamicPriors(video=tiny_priors.video), "a panda is dancing")
    assert [t.name for t in coarse.terms] == ["video", "regularisers", "temporal_tv"]
    assert train(coarse).complete
    with pytest.raises(ValueError, match="Zero123 is conditioned on the reference image"):
        StaticStage(p.static, None, StaticPriors(sd=tiny_priors.sd, zero123=tiny_priors.zero123), "a panda")
    with pytest.raises(ValueError, match="no reference image and no prior"):
        StaticStage(p.static, None)
