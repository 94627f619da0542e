"""Bad input fails before the first step with an error that says what was wrong."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from a124_core.presets import preset
from a124_core.priors.base import PriorKind
from a124_core.training.coarse_stage import CoarseStage, DynamicPriors
from a124_core.training.refine_stage import RefinePriors, RefineStage
from a124_core.training.representations import Grid4D
from a124_core.training.runner import train
from a124_core.training.static_stage import StaticPriors, StaticStage


def test_static_scene_into_refine_stage(panda_reference, smoke_run):
    with pytest.raises(ValueError, match="refine stage continues the coarse .* got a static scene"):
        RefineStage(preset("smoke").refine, panda_reference, smoke_run.checkpoints / "static.safetensors")


def test_dynamic_scene_into_static_and_coarse_stages(panda_reference, smoke_run):
    with pytest.raises(ValueError, match="static stage got a dynamic scene"):
        StaticStage(preset("smoke").static, panda_reference, scene=smoke_run.coarse)
    with pytest.raises(ValueError, match="coarse stage starts from the static stage's result, but got a dynamic"):
        CoarseStage(preset("smoke").coarse, panda_reference, smoke_run.coarse)


def test_checkpoint_of_another_stage_cannot_be_resumed(panda_reference, smoke_run):
    stage = StaticStage(preset("smoke").static, panda_reference)
    with pytest.raises(ValueError, match="written by the 'coarse' stage"):
        train(stage, resume_from=smoke_run.checkpoints / "coarse.safetensors")
    assert stage.step == 0


def test_incompatible_checkpoint_names_both_values(panda_reference, smoke_run):
    grid6 = Grid4D(num_knots=6)
    other_t = replace(preset("smoke").coarse, representation=grid6)
    stage = CoarseStage(other_t, panda_reference, smoke_run.static)
    with pytest.raises(ValueError, match="num_knots is 4 in the checkpoint but 6 here"):
        train(stage, resume_from=smoke_run.checkpoints / "coarse.safetensors")
    with pytest.raises(ValueError, match="it has 4 time knots .num_knots. but the refine config has 6"):
        RefineStage(replace(preset("smoke").refine, representation=grid6), panda_reference, smoke_run.coarse)
    bigger = preset("smoke").static
    bigger = replace(bigger, field=replace(bigger.field, hidden_dim=24))
    with pytest.raises(
        ValueError, match="field_config is .*hidden_dim.: 16.* in the checkpoint but .*hidden_dim.: 24"
    ):
        train(StaticStage(bigger, panda_reference), resume_from=smoke_run.checkpoints / "static.safetensors")


def test_prior_of_the_wrong_kind(panda_reference, tiny_priors, smoke_run):
    with pytest.raises(ValueError, match="expects a prior of kind 'image-text', got 'image-pose'"):
        StaticStage(preset("smoke").static, panda_reference, StaticPriors(sd=tiny_priors.zero123), prompt="a panda")
    with pytest.raises(ValueError, match="expects a prior of kind 'video-text', got 'image-text'"):
        CoarseStage(
            preset("smoke").coarse, panda_reference, smoke_run.static, DynamicPriors(video=tiny_priors.sd), prompt="x"
        )
    refine = preset("smoke").refine
    for prior, match in (
        (SimpleNamespace(kind=PriorKind.IMAGE_TEXT), "expects a prior of kind 'image-control'"),
        (SimpleNamespace(kind=PriorKind.IMAGE_CONTROL), "lacks image_size, schedule, .*control_condition"),
    ):
        with pytest.raises(ValueError, match=match):
            RefineStage(refine, panda_reference, smoke_run.coarse, RefinePriors(controlnet=prior), token_prompt="a x")
    assert smoke_run.coarse.stage == "coarse", "a refused refine stage leaves the scene it was given alone"


def test_prior_settings_and_prompts(panda_reference, tiny_priors, smoke_run):
    p = preset("smoke")
    with pytest.raises(ValueError, match="needs a motion prompt"):
        CoarseStage(p.coarse, panda_reference, smoke_run.static, DynamicPriors(video=tiny_priors.video))
    with pytest.raises(ValueError, match="appearance prompt"):
        StaticStage(p.static, panda_reference, StaticPriors(sd=tiny_priors.sd))
    cn = RefinePriors(controlnet=tiny_priors.controlnet)
    with pytest.raises(ValueError, match="does not contain the token '_cat_'"):
        RefineStage(
            p.refine,
            panda_reference,
            smoke_run.coarse,
            cn,
            token_prompt="a panda is dancing",
            token_name="_cat_",
            token_embedding=torch.zeros(1, 32),
        )
    with pytest.raises(ValueError, match="Token file .* holds"):
        from safetensors.torch import save_file

        path = smoke_run.checkpoints / "other.safetensors"
        save_file({"_dog_": torch.zeros(1, 32)}, str(path))
        RefineStage(
            p.refine,
            panda_reference,
            smoke_run.coarse,
            cn,
            token_prompt="a _cat_ is dancing",
            token_name="_cat_",
            token_embedding=path,
        )


def test_bad_reference_and_config(panda_reference):
    empty = replace(panda_reference, mask=torch.zeros_like(panda_reference.mask))
    with pytest.raises(ValueError, match="mask is empty"):
        StaticStage(preset("smoke").static, empty)
    with pytest.raises(ValueError, match="needs a StaticStageConfig"):
        StaticStage(preset("smoke").coarse, panda_reference)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CoarseStage(preset("smoke").coarse, panda_reference, "/nonexistent/static.safetensors")
