"""The video-to-4D oracle input (issue 26): the moving scene filmed from the reference camera, as arrays, as a
ReferenceClip and as mp4 files, and the per-frame image-pose oracle that answers for the conditioning frame's time.
Fast (seconds): no stage is trained here; the training phase drives the real stages with these."""

from __future__ import annotations

import pytest
import torch

from a124_core.priors.zero123 import pose_embedding
from a124_core.reference import ReferenceClip, build_clip, load_clip_video

from . import scenes, setup
from .clip import NUM_FRAMES, render_clip
from .clip_priors import ClipImagePoseOracle, stack

pytestmark = pytest.mark.oracle


@pytest.fixture(scope="module")
def clip():
    return render_clip()


def test_clip_is_the_moving_scene_from_the_reference_camera(clip):
    assert len(clip) == NUM_FRAMES >= 24 and clip.frames.shape == (NUM_FRAMES, 32, 32, 3)
    assert torch.allclose(clip.times, torch.arange(NUM_FRAMES) / (NUM_FRAMES - 1))
    still = setup.reference(scenes.moving)  # the static oracle's reference image is frame 0
    assert torch.equal(clip.frames[0].permute(2, 0, 1), still.rgb) and torch.equal(clip.masks[0], still.mask[0])
    last = scenes.image(scenes.moving, 1.0, 90.0, 0.0, 32, 32)
    assert torch.equal(clip.frames[-1].permute(2, 0, 1), last)
    frames = clip.frames.flatten(1)
    distance = (frames[:, None] - frames[None]).abs().mean(-1) + torch.eye(NUM_FRAMES)
    assert float(distance.min()) > 0  # every frame differs from every other: a frame identifies its time


def test_reference_clip_keeps_the_camera_framing(clip, tmp_path):
    ref_clip = clip.reference_clip()
    assert len(ref_clip) == NUM_FRAMES and ref_clip.size == 32
    first = ref_clip.first_reference()
    assert torch.equal(first.rgb, setup.reference(scenes.moving).rgb)
    at = ref_clip.at_times([0.5])
    assert at.source_index.tolist() == [(NUM_FRAMES - 1) // 2]  # 0.5 lies halfway: the earlier frame
    loaded = ReferenceClip.load(ref_clip.save(tmp_path / "oracle_clip.safetensors"))
    assert torch.equal(loaded.rgb, ref_clip.rgb) and torch.equal(loaded.first.rgb, first.rgb)


def test_videos_decode_to_the_same_clip_as_the_arrays(clip, tmp_path):
    video, mask = clip.write_videos(tmp_path)
    from_files = load_clip_video(video, mask)
    from_arrays = build_clip(clip.frames, clip.masks, fps=24.0)
    assert len(from_files) == NUM_FRAMES and from_files.fps == 24.0
    assert from_files.meta["bbox"] == from_arrays.meta["bbox"]
    assert float((from_files.mask != from_arrays.mask).float().mean()) < 0.002
    assert float((from_files.rgb - from_arrays.rgb).abs().mean()) < 2 / 255


def test_pose_oracle_identifies_the_frame_it_is_given(clip):
    oracle = ClipImagePoseOracle(clip.times)
    frames = clip.reference_clip().rgb
    for k in range(NUM_FRAMES):
        ref = oracle.reference_condition(frames[k][None])
        assert int(ref.index) == k and float(ref.time) == float(clip.times[k])
    assert max(oracle.errors) == 0.0
    shifted = torch.roll(frames[12], shifts=4, dims=-1)  # a frame shifted by 4 px is no clip frame
    oracle.reference_condition(shifted[None])
    assert oracle.errors[-1] > 0.01


def _x0(oracle: ClipImagePoseOracle, condition, size: int = 32) -> torch.Tensor:
    """The image the oracle's guided epsilon denoises to ([B, 3, S, S] in [0, 1]) at the method's CFG scale."""
    b = condition.polar_deg.shape[0]
    t = torch.full((b,), 500)
    a = oracle.schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    noisy = torch.randn(b, 3, size, size, generator=torch.Generator().manual_seed(0))
    eps = oracle.predict_noise(noisy, t, condition, guidance_scale=5.0)
    return ((noisy - (1 - a).sqrt() * eps) / a.sqrt() + 1) / 2


def test_pose_oracle_answers_for_the_conditioning_frames_time(clip):
    oracle = ClipImagePoseOracle(clip.times)
    frames = clip.reference_clip().rgb
    polar, azimuth = torch.tensor([60.0, 100.0]), torch.tensor([45.0, -120.0])
    pose = pose_embedding(polar, azimuth)
    for k in (0, 12, NUM_FRAMES - 1):
        x0 = _x0(oracle, oracle.pose_condition(oracle.reference_condition(frames[k][None]), pose))
        t = float(clip.times[k])
        truth = torch.stack(
            [scenes.image(scenes.moving, t, float(p), float(a), 32, 32) for p, a in zip(polar, azimuth)]
        )
        assert torch.allclose(x0, truth, atol=1e-4), k
    # the mutation "Zero123 conditioned on frame 0 for every time": at t = 1 it answers the scene at t = 0
    wrong = _x0(oracle, oracle.pose_condition(oracle.reference_condition(frames[0][None]), pose))
    truth_1 = torch.stack(
        [scenes.image(scenes.moving, 1.0, float(p), float(a), 32, 32) for p, a in zip(polar, azimuth)]
    )
    assert scenes.psnr(wrong, truth_1) < 25.0  # vs exact (> 80 dB) for the right frame
    assert oracle.answered_times[-2:] == [0.0, 0.0]


def test_stacked_references_pair_with_their_poses(clip):
    oracle = ClipImagePoseOracle(clip.times)
    frames = clip.reference_clip().rgb
    refs = stack([oracle.reference_condition(frames[k][None]) for k in (3, 20)])
    pose = pose_embedding(torch.tensor([80.0, 80.0]), torch.tensor([30.0, 30.0]))
    x0 = _x0(oracle, oracle.pose_condition(refs, pose))
    for row, k in enumerate((3, 20)):
        truth = scenes.image(scenes.moving, float(clip.times[k]), 80.0, 30.0, 32, 32)
        assert torch.allclose(x0[row], truth, atol=1e-4)
    with pytest.raises(ValueError, match="2 reference frames for 3 poses"):
        oracle.pose_condition(refs, pose_embedding(torch.zeros(3) + 90, torch.zeros(3)))
