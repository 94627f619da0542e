"""The coarse stage with a reference clip (video-to-4D, issue 26): which frames a step draws, which targets and
conditions each term takes for them, and that the real Zero123 prior scores a batch of views of different frames
with one call."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
import torch

from a124_core.cameras import make_cameras
from a124_core.presets import preset
from a124_core.training import losses as L
from a124_core.training.coarse_stage import CoarseStage, DynamicPriors
from a124_core.training.representations import Deformation
from a124_core.training.static_stage import StaticStage
from a124_core.training.terms.base import StepContext
from a124_core.training.terms.clip_frames import condition_rows, nearest_frames, stack_conditions
from a124_core.training.terms.clip_reconstruction import ClipReconstruction, per_frame_depth_loss
from a124_core.training.terms.clip_zero123_sds import ClipZero123SDS
from a124_core.training.terms.reconstruction import Reconstruction
from a124_core.training.terms.zero123_sds import Zero123SDS
from a124_core.training.video_clip import ClipFrameViews, stratified_frames
from a124_core.training.view import View
from tests.oracle.clip import render_clip
from tests.oracle.clip_priors import ClipImagePoseOracle


@pytest.fixture(scope="module")
def clip():
    return render_clip(num_frames=24, size=32).reference_clip()


@pytest.fixture(scope="module")
def static_scene(clip):
    config = replace(preset("smoke").static, steps=1)
    stage = StaticStage(config, clip.first_reference())
    return stage.scene


def coarse_config():
    config = preset("smoke", "deformation").coarse
    return replace(config, representation=Deformation(deformation=config.representation.deformation))


def test_stratified_frames_take_one_frame_from_each_stretch_and_cover_the_clip_evenly():
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(24)
    for _ in range(3000):
        index = stratified_frames(24, 4, g)
        assert index.tolist() == sorted(index.tolist()) and len(index) == 4
        assert [int(i) // 6 for i in index] == [0, 1, 2, 3], "one frame from each quarter of the clip"
        counts[index] += 1
    assert float(counts.min()) > 0.8 * 500 and float(counts.max()) < 1.2 * 500
    assert stratified_frames(3, 16, g).tolist() == [0, 1, 2], "a clip shorter than F: every frame"


def test_nearest_frames_and_stacked_conditions():
    times = torch.linspace(0, 1, 5)
    assert nearest_frames(times, torch.tensor([0.0, 0.26, 0.74, 1.0])).tolist() == [0, 1, 3, 4]

    @dataclass
    class Ref:
        embedding: torch.Tensor  # [1, 1, D]
        latent: torch.Tensor  # [1, 4, 2, 2]
        name: str = "ref"

    refs = [Ref(torch.full((1, 1, 3), float(i)), torch.full((1, 4, 2, 2), float(i))) for i in range(5)]
    stacked = stack_conditions(refs)
    assert stacked.embedding.shape == (5, 1, 3) and stacked.latent.shape == (5, 4, 2, 2) and stacked.name == "ref"
    rows = condition_rows(stacked, torch.tensor([4, 0, 4]))
    assert rows.embedding[:, 0, 0].tolist() == [4.0, 0.0, 4.0] and rows.latent[:, 0, 0, 0].tolist() == [4.0, 0, 4]
    assert condition_rows(torch.arange(5.0)[:, None], torch.tensor([2, 1]))[:, 0].tolist() == [2.0, 1.0]


def test_per_frame_depth_loss_is_the_depth_loss_of_each_frame():
    g = torch.Generator().manual_seed(0)
    pred, gt = torch.rand(3, 8, 8, 1, generator=g), torch.rand(3, 8, 8, 1, generator=g)
    mask = (torch.rand(3, 8, 8, 1, generator=g) > 0.4).float()
    expected = torch.stack([L.depth_loss(pred[k : k + 1], gt[k : k + 1], mask[k : k + 1]) for k in range(3)]).mean()
    assert torch.allclose(per_frame_depth_loss(pred, gt, mask), expected, atol=1e-6)
    assert float(per_frame_depth_loss(-gt * 2 + 1, gt, mask)) < 1e-6, "an affine match of every frame costs 0"


def test_a_clip_gives_the_coarse_stage_per_frame_terms_and_frame_views(clip, static_scene):
    zero123 = ClipImagePoseOracle(clip.times)
    stage = CoarseStage(coarse_config(), clip, static_scene, DynamicPriors(zero123=zero123))
    kinds = [type(t) for t in stage.terms]
    assert ClipZero123SDS in kinds and ClipReconstruction in kinds
    assert Zero123SDS not in kinds and Reconstruction not in kinds
    assert isinstance(stage.views, ClipFrameViews) and not stage.views.camera_path
    assert not any(stage.is_reconstruction_step(s) for s in range(stage.config.steps)), "every step draws frames"
    assert torch.equal(stage.targets["rgb"][0].permute(2, 0, 1), clip.rgb[0]), "the reference is the first frame"
    alone = CoarseStage(coarse_config(), clip, static_scene)  # no prior: still the frames of the clip every step
    assert not any(alone.is_reconstruction_step(s) for s in range(alone.config.steps))
    with pytest.raises(ValueError, match="Zero123 is conditioned on the reference image"):
        CoarseStage(coarse_config(), None, static_scene, DynamicPriors(zero123=zero123))


def _step(stage: CoarseStage, step: int = 0) -> tuple[StepContext, dict]:
    view, at_start = stage.views.draw(stage)
    out = stage.render_view(view, stage.render_shape)
    ctx = StepContext(step, 0.0, True, view, out, at_start, stage.scene.field, stage.generator, stage.render_view,
                      stage.reference_at_time, stage.targets)  # fmt: skip
    return ctx, out


def test_zero123_scores_each_view_under_the_frame_of_its_time(clip, static_scene):
    zero123 = ClipImagePoseOracle(clip.times)
    stage = CoarseStage(coarse_config(), clip, static_scene, DynamicPriors(zero123=zero123))
    stage.attach()
    assert zero123.matched == list(range(len(clip))), "one condition per frame, built once"
    term = next(t for t in stage.terms if isinstance(t, ClipZero123SDS))
    for step in range(3):
        ctx, _ = _step(stage, step)
        before = len(zero123.answered_times)
        assert "zero123" in term.losses(ctx)
        answered = zero123.answered_times[before:]
        assert answered == pytest.approx(ctx.view.times.tolist()), "each view answered at its own frame's time"
        assert len(set(answered)) == len(answered) > 1, "one prior call for views of different frames"
    assert len(zero123.matched) == len(clip), "no condition recomputed per step"


def test_reconstruction_compares_each_time_with_its_frame(clip, static_scene):
    stage = CoarseStage(coarse_config(), clip, static_scene)
    term = next(t for t in stage.terms if isinstance(t, ClipReconstruction))
    ctx, _ = _step(stage)
    targets = term.targets
    seen = []

    def replay(view, size, **_):
        """A field that renders the clip's frame `shift` frames later at every time."""
        index = (nearest_frames(targets["times"], view.times) + replay.shift).clamp(max=len(clip) - 1)
        seen.append(view)
        return {"rgb": targets["rgb"][index], "opacity": targets["mask"][index], "depth": targets["mask"][index]}

    ctx.render_view = replay
    replay.shift = 0
    exact = term.losses(ctx)
    assert float(exact["rgb"]) == 0.0 and float(exact["mask"]) == 0.0
    view = seen[-1]
    assert torch.equal(view.times, ctx.view.times) and view.shading == "albedo" and float(view.ambient) == 1.0
    assert torch.allclose(view.cameras.azimuth_deg, torch.zeros(len(view.times)))
    assert torch.allclose(view.cameras.polar_deg, torch.full((len(view.times),), 90.0))
    replay.shift = 6
    late = term.losses(ctx)
    assert float(late["rgb"]) > 0 and float(late["mask"]) > 0, "a quarter clip late is not the frame of that time"


def test_real_zero123_scores_a_batch_of_frames_with_stacked_conditions(clip, tiny_priors, one_thread):
    prior = tiny_priors.zero123
    config = coarse_config()
    term = ClipZero123SDS(prior, config.zero123, clip.rgb, clip.times, config.camera)
    term.attach(torch.device("cpu"))
    term.build()
    n = len(clip)
    assert term.references.clip_embedding.shape[0] == n and term.references.latent.shape[0] == n
    single = prior.reference_condition(clip.rgb[7][None])
    assert torch.allclose(condition_rows(term.references, torch.tensor([7])).latent, single.latent, atol=1e-5)
    frames = [2, 9, 20]
    images = clip.rgb[frames].permute(0, 2, 3, 1).clone().requires_grad_(True)
    cameras = make_cameras(torch.tensor([80.0, 90.0, 100.0]), torch.tensor([40.0, -90.0, 170.0]))
    view = View(cameras, clip.times[frames], "albedo", None, 1.0, torch.ones(3))
    ctx = StepContext(0, 0.5, True, view, {"rgb": images}, False, None, torch.Generator().manual_seed(0), None)
    loss = term.losses(ctx)["zero123"]
    loss.backward()
    assert torch.isfinite(loss) and float(images.grad.abs().sum()) > 0
