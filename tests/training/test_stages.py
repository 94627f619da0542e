"""All three stages end to end with the tiny priors; the refine stage's frozen condition renderer."""

from __future__ import annotations

import copy
import time

import torch

from a124_core.fields.grid4d import Grid4DField
from a124_core.fields.static import StaticField
from a124_core.presets import preset
from a124_core.training.refine_stage import RefinePriors, RefineStage
from a124_core.training.runner import Callbacks, train
from a124_core.training.scene import Scene

from .conftest import parameters_equal


def test_static_and_coarse_results(smoke_run):
    static, coarse = smoke_run.static, smoke_run.coarse
    assert isinstance(static.field, StaticField) and static.stage == "static" and static.complete
    assert isinstance(coarse.field, Grid4DField) and coarse.stage == "coarse" and coarse.field.num_knots == 4
    assert coarse.occupancy.time_slots == 2 and bool(coarse.occupancy.refreshed.all())
    # The knots started as copies of the static grid and have moved apart (video SDS + temporal sampling).
    knots = coarse.field.embeddings.detach()
    assert not torch.equal(knots[0], knots[-1])
    for name in ("static", "coarse"):
        loaded = Scene.load(smoke_run.checkpoints / f"{name}.safetensors")
        original = static if name == "static" else coarse
        assert parameters_equal(loaded.field, original.field) and parameters_equal(
            loaded.occupancy, original.occupancy
        )
        assert loaded.stage_config["steps"] == getattr(preset("smoke"), name).steps


def _refine(reference, priors, scene, **kwargs):
    return RefineStage(
        preset("smoke").refine,
        reference,
        scene,
        RefinePriors(priors.video, priors.zero123, priors.controlnet),
        prompt="a panda is dancing",
        token_prompt="a _panda_ is dancing",
        token_name="_panda_",
        token_embedding=torch.randn(2, 32, generator=torch.Generator().manual_seed(1)),
        **kwargs,
    )


def test_refine_condition_renderer_is_frozen_and_sees_the_same_rays(panda_reference, tiny_priors, smoke_run, tmp_path):
    stage = _refine(panda_reference, tiny_priors, smoke_run.checkpoints / "coarse.safetensors")
    before = {k: v.clone() for k, v in stage.condition_scene.field.state_dict().items()}
    assert parameters_equal(stage.condition_scene.field, smoke_run.coarse.field)
    trained_ids = {id(p) for p in stage.trainable_parameters()}
    assert not any(id(p) in trained_ids or p.requires_grad for p in stage.condition_scene.field.parameters())

    calls = []
    render = stage.render_view

    def recording(view, size, field=None, occupancy=None, **kwargs):
        calls.append((field if field is not None else stage.scene.field, view, size))
        return render(view, size, field, occupancy, **kwargs)

    stage.render_view = recording
    seen = []
    start = time.perf_counter()
    train(stage, Callbacks(on_progress=lambda s, n, losses, p: seen.append(losses)), tmp_path)
    print(f"refine smoke stage: {time.perf_counter() - start:.1f} s")
    assert any("controlnet" in losses for losses in seen), "the ControlNet loss must run on SDS steps"
    pairs = 0
    clips = [(i, call) for i, call in enumerate(calls) if call[0] is stage.scene.field and call[1].times.numel() > 1]
    for i, (f2, cond, s2) in enumerate(calls):
        if f2 is stage.condition_scene.field:  # compare with the step's clip render (a reference render may follow it)
            _, (_, trained, s1) = max(c for c in clips if c[0] < i)
            pairs += 1
            frames = [0, stage.config.time.num_frames // 2]
            assert tuple(s1) == tuple(s2)
            assert torch.equal(cond.cameras.c2w, trained.cameras.c2w[frames])
            assert torch.equal(cond.cameras.fov_y_deg, trained.cameras.fov_y_deg[frames])
            assert torch.equal(cond.times, trained.times[frames])
            assert torch.equal(cond.light_dirs, trained.light_dirs[frames])
            assert (cond.shading, cond.ambient) == (trained.shading, trained.ambient)
            assert torch.equal(cond.background, trained.background)
    assert pairs >= 1, "the condition model never rendered"
    after = stage.condition_scene.field.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the frozen condition model changed"
    assert not parameters_equal(stage.scene.field, smoke_run.coarse.field), "the trained model did change"
    final = Scene.load(tmp_path / "refine.safetensors")
    assert final.stage == "refine" and final.is_dynamic and final.complete


def test_all_stages_smoke_timing(panda_reference, tiny_priors, smoke_run):
    """The smoke preset must stay cheap enough for the CLI's installation check (the numbers are printed)."""
    stage = _refine(panda_reference, tiny_priors, copy.deepcopy(smoke_run.coarse))
    start = time.perf_counter()
    losses = []
    scene = train(stage, Callbacks(on_progress=lambda s, n, values, p: losses.append(values["total"])))
    seconds = {**smoke_run.seconds, "refine": time.perf_counter() - start}
    print("smoke preset, tiny priors, CPU: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    assert scene.complete and all(torch.isfinite(torch.tensor(losses)))
    assert len(losses) == preset("smoke").refine.steps


def test_static_stage_renders_normals_for_the_first_fifth_only(panda_reference):
    from a124_core.cameras import sample_static_cameras
    from a124_core.presets import preset
    from a124_core.training.config import with_steps
    from a124_core.training.static_stage import StaticStage

    stage = StaticStage(with_steps(preset("smoke").static, 10), panda_reference)
    cams = sample_static_cameras(1)
    shadings = []
    for step in range(10):
        stage.step = step
        shadings.append(stage.draw_view(cams, None).shading)
    assert shadings[:2] == ["normal", "normal"] and "normal" not in shadings[2:]
