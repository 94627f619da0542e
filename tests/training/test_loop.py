"""The shared loop: cancel + resume is bit-identical, the NaN guard skips and stops, checkpoints are complete."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch

from a124_core.checkpoint import load_checkpoint
from a124_core.presets import preset
from a124_core.training.config import LoopConfig
from a124_core.training.refine_stage import RefinePriors, RefineStage
from a124_core.training.runner import Callbacks, NonFiniteLossError, TrainingCancelled, train
from a124_core.training.scene import Scene
from a124_core.training.static_stage import StaticPriors, StaticStage

from .conftest import parameters_equal


def _optimizer_equal(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> bool:
    sa, sb = a.state_dict()["state"], b.state_dict()["state"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[i][k], sb[i][k]) for i in sa for k in sa[i])


def _cancel_at(step: int):
    calls = {"n": 0}

    def should_cancel() -> bool:
        calls["n"] += 1
        return calls["n"] == step + 1  # checked before every step: the (step+1)-th check is before step `step`

    return should_cancel


def _static_stage(reference, priors, config=None):
    return StaticStage(
        config or preset("smoke").static, reference, StaticPriors(priors.sd, priors.zero123), prompt="a panda"
    )


def test_static_resume_is_bit_identical(panda_reference, tiny_priors, tmp_path):
    config = preset("smoke").static
    full = _static_stage(panda_reference, tiny_priors, config)
    train(full)
    stop = random.Random(7).randrange(1, config.steps)  # a random step between the first and the last
    first = _static_stage(panda_reference, tiny_priors, config)
    with pytest.raises(TrainingCancelled) as info:
        train(first, Callbacks(should_cancel=_cancel_at(stop)), checkpoint_dir=tmp_path)
    assert info.value.step == stop and info.value.checkpoint.is_file()
    _, meta = load_checkpoint(info.value.checkpoint)
    assert meta["step"] == stop and meta["stage"] == "static" and not meta["complete"]
    assert meta["stage_config"]["steps"] == config.steps
    resumed = _static_stage(panda_reference, tiny_priors, config)
    assert not parameters_equal(resumed.scene.field, full.scene.field)
    train(resumed, checkpoint_dir=tmp_path, resume_from=info.value.checkpoint)
    assert parameters_equal(resumed.scene.field, full.scene.field), f"resume at step {stop} diverged"
    assert parameters_equal(resumed.scene.occupancy, full.scene.occupancy)
    assert _optimizer_equal(resumed.optimizer, full.optimizer)
    final = Scene.load(tmp_path / "static.safetensors")
    assert final.complete and final.step == config.steps and parameters_equal(final.field, full.scene.field)
    assert not info.value.checkpoint.exists(), "a finished stage removes its rolling _latest checkpoint (issue 28)"


def test_refine_resume_is_bit_identical(panda_reference, tiny_priors, smoke_run, tmp_path):
    config = preset("smoke").refine
    priors = RefinePriors(tiny_priors.video, tiny_priors.zero123, tiny_priors.controlnet)
    token = torch.randn(1, 32, generator=torch.Generator().manual_seed(0))

    def stage():
        return RefineStage(
            config,
            panda_reference,
            smoke_run.checkpoints / "coarse.safetensors",  # a fresh copy each time: the stage trains it in place
            priors,
            prompt="a panda is dancing",
            token_prompt="a _panda_ is dancing",
            token_name="_panda_",
            token_embedding=token,
        )

    full = stage()
    train(full)
    stop = random.Random(11).randrange(1, config.steps)
    first = stage()
    with pytest.raises(TrainingCancelled) as info:
        train(first, Callbacks(should_cancel=_cancel_at(stop)), checkpoint_dir=tmp_path)
    resumed = stage()
    train(resumed, resume_from=info.value.checkpoint)
    assert parameters_equal(resumed.scene.field, full.scene.field), f"resume at step {stop} diverged"
    assert parameters_equal(resumed.condition_scene.field, full.condition_scene.field)
    assert _optimizer_equal(resumed.optimizer, full.optimizer)


def test_periodic_checkpoints_and_progress(panda_reference, tiny_priors, tmp_path):
    config = replace(
        preset("smoke").static, loop=LoopConfig(checkpoint_every=3, progress_every=2, preview_every=4, preview_size=16)
    )
    seen, periodic = [], {}
    latest = tmp_path / "static_latest.safetensors"

    def progress(*report):
        seen.append(report)
        if report[0] == config.steps:  # the last report comes before the final checkpoint removes the rolling one
            periodic["file"] = load_checkpoint(latest)

    train(_static_stage(panda_reference, tiny_priors, config), Callbacks(on_progress=progress), tmp_path)
    assert (tmp_path / "static.safetensors").is_file() and not latest.exists()
    tensors, meta = periodic["file"]
    assert meta["step"] == 6  # last multiple of 3 before the end
    assert "rng/generator" in tensors and "rng/cpu" in tensors and any(k.startswith("optim/") for k in tensors)
    assert [s for s, *_ in seen] == [2, 4, 6, 8]
    assert [p is not None for *_, p in seen] == [False, True, False, True]
    assert seen[1][3].shape == (16, 16, 3)
    assert all(set(losses) >= {"total"} for _, _, losses, _ in seen)
    assert not list(tmp_path.glob("*.tmp")), "atomic writes leave no temporary files"


def _inject(stage, bad_steps: set[int], kind: str = "loss"):
    original = stage.compute_losses

    def compute(step):
        losses = original(step)
        if step in bad_steps:
            if kind == "loss":
                losses["rgb_nan"] = losses[next(iter(losses))] * float("nan")
            else:  # finite loss, NaN gradient: d sqrt(x) / dx at 0 times 0
                w = stage.scene.field.mlp[0].weight
                losses["grad_nan"] = (w.sum() * 0.0).sqrt()
        return losses

    stage.compute_losses = compute


@pytest.mark.parametrize("kind", ["loss", "gradient"])
def test_nan_step_is_skipped(panda_reference, kind):
    config = replace(preset("smoke").static, steps=6)
    stage = StaticStage(config, panda_reference)  # reconstruction only: fast
    _inject(stage, {3}, kind)
    snapshots = {}
    original = stage.before_step

    def before(step):
        snapshots[step] = {k: v.clone() for k, v in stage.scene.field.state_dict().items()}
        original(step)

    stage.before_step = before
    train(stage)
    after_3 = snapshots[4]
    assert all(torch.equal(snapshots[3][k], after_3[k]) for k in after_3), "the bad step must not update"
    assert not all(torch.equal(snapshots[2][k], snapshots[3][k]) for k in after_3), "good steps update"
    assert not all(torch.equal(snapshots[4][k], v) for k, v in stage.scene.field.state_dict().items()), (
        "training continued"
    )
    assert all(torch.isfinite(v).all() for v in stage.scene.field.state_dict().values())
    assert stage.bad_steps == 0


def test_k_bad_steps_in_a_row_stop(panda_reference):
    config = replace(preset("smoke").static, steps=8, loop=LoopConfig(max_bad_steps=3))
    stage = StaticStage(config, panda_reference)
    _inject(stage, {1, 3, 4, 5, 6})  # step 1 alone is tolerated; 3, 4, 5 are three in a row
    with pytest.raises(NonFiniteLossError, match=r"3 non-finite steps in a row, the last at step 5.*rgb_nan") as err:
        train(stage)
    assert "resum" not in str(err.value), "animate-mesh and the nodes cannot resume: the CLI adds that hint itself"


class _RecordingPrior:
    """Delegates to a real prior and records device moves."""

    def __init__(self, prior, log):
        self._prior, self._log = prior, log

    def __getattr__(self, name):
        return getattr(self._prior, name)

    def to(self, device):
        self._log.append(("to", str(device)))
        self._prior.to(device)
        return self


def test_priors_move_to_the_device_only_while_the_stage_runs(panda_reference, tiny_priors):
    log: list = []
    config = replace(preset("smoke").static, steps=4, loop=LoopConfig(max_bad_steps=1))
    stage = StaticStage(
        config, panda_reference, StaticPriors(sd=_RecordingPrior(tiny_priors.sd, log)), prompt="a panda"
    )
    original = stage.compute_losses
    stage.compute_losses = lambda step: (log.append(("step", step)), original(step))[1]
    train(stage)
    assert log[0] == ("to", "cpu") and log[-1] == ("to", "cpu")  # attach before the first step, release after the last
    assert [e for e in log if e[0] == "step"] == [("step", i) for i in range(4)]
    log.clear()
    stage2 = StaticStage(
        replace(config, steps=6),
        panda_reference,
        StaticPriors(sd=_RecordingPrior(tiny_priors.sd, log)),
        prompt="a panda",
    )
    _inject(stage2, {5})
    with pytest.raises(NonFiniteLossError):
        train(stage2)
    assert log[-1] == ("to", "cpu"), "priors are released even when training stops with an error"
    no_offload = StaticStage(
        replace(config, loop=LoopConfig(offload_priors=False)),
        panda_reference,
        StaticPriors(sd=_RecordingPrior(tiny_priors.sd, log)),
        prompt="a panda",
    )
    log.clear()
    train(no_offload)
    assert log == [("to", "cpu")]
