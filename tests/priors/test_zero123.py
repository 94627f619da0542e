"""Zero123Prior: both diffusers layouts, pose convention pinned against the camera module, CFG, bad input."""

from __future__ import annotations

import shutil

import pytest
import torch

from a124_core.cameras import make_cameras, reference_camera
from a124_core.guidance.sds import SDSConfig, score_distillation
from a124_core.priors.base import PriorKind
from a124_core.priors.zero123 import Zero123Prior, pose_embedding


@pytest.fixture(scope="module")
def z123(tiny_models):
    return Zero123Prior.from_pretrained(tiny_models.zero123, device="cpu")


@pytest.fixture(scope="module")
def reference_image():
    return torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))


def test_reference_pose_is_identity():
    torch.testing.assert_close(
        pose_embedding(torch.tensor([90.0]), torch.tensor([0.0])), torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    )


def test_azimuth_sign_matches_camera_convention():
    """A camera moved 90 deg toward its own right embeds as [0, 1, 0, 0] (SPEC 2, det +1 cameras)."""
    ref = reference_camera()
    right, up = ref.c2w[0, :3, 0], ref.c2w[0, :3, 1]
    assert torch.det(ref.c2w[0, :3, :3]) > 0
    moved = make_cameras(90.0, 90.0)
    # The moved camera sits on the reference camera's right-hand side...
    torch.testing.assert_close(moved.positions[0] / 1.8, right, atol=1e-6, rtol=0)
    # ...and a small step to the right increases azimuth, a step up decreases polar.
    step = ref.positions[0] + 0.1 * right
    assert torch.atan2(step[0], step[2]) > 0
    step_up = ref.positions[0] + 0.1 * up
    assert torch.rad2deg(torch.acos(step_up[1] / step_up.norm())) < 90.0
    pose = pose_embedding(moved.polar_deg, moved.azimuth_deg)
    torch.testing.assert_close(pose, torch.tensor([[0.0, 1.0, 0.0, 0.0]]), atol=1e-6, rtol=0)
    up_cam = make_cameras(60.0, 0.0)
    assert pose_embedding(up_cam.polar_deg, up_cam.azimuth_deg)[0, 0] == pytest.approx(-torch.pi / 6)


def test_pose_is_relative_to_the_reference_view():
    p = pose_embedding(
        torch.tensor([80.0]), torch.tensor([40.0]), torch.tensor([0.3]), reference_polar=70.0, reference_azimuth=-50.0
    )
    want = torch.tensor([[torch.pi / 18, torch.sin(torch.tensor(torch.pi / 2)), 0.0, 0.3]])
    torch.testing.assert_close(p, want, atol=1e-6, rtol=0)


def test_both_layouts_load_into_the_same_projection(z123, tiny_models, reference_image):
    other = Zero123Prior.from_pretrained(tiny_models.zero123_clip_camera, device="cpu")
    assert z123.kind is other.kind is PriorKind.IMAGE_POSE
    torch.testing.assert_close(z123.projection.weight, other.projection.weight)
    assert z123.projection.in_features == z123.image_encoder.config.projection_dim + 4
    z = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([300, 600])
    pose = pose_embedding(torch.tensor([90.0, 70.0]), torch.tensor([0.0, 120.0]))
    pa = z123.pose_condition(z123.reference_condition(reference_image), pose)
    pb = other.pose_condition(other.reference_condition(reference_image), pose)
    torch.testing.assert_close(z123.predict_noise(z, t, pa, 5.0), other.predict_noise(z, t, pb, 5.0))


def test_reference_latent_is_unscaled_and_cached(z123, reference_image):
    ref = z123.reference_condition(reference_image)
    assert ref.latent.shape == (1, 4, 16, 16) and ref.clip_embedding.shape == (1, 1, 32)
    small = torch.nn.functional.interpolate(reference_image, size=(32, 32), mode="bilinear", antialias=True)
    with torch.no_grad():
        raw = z123.vae.encode(small * 2 - 1).latent_dist.mean
    torch.testing.assert_close(ref.latent, raw)
    assert z123.vae.config.scaling_factor != 1.0


def test_batched_cfg_and_zero_unconditional(z123, reference_image):
    ref = z123.reference_condition(reference_image)
    cond = z123.pose_condition(ref, pose_embedding(torch.tensor([90.0, 100.0]), torch.tensor([30.0, -60.0])))
    z = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([200, 800])
    eps = z123.predict_noise(z, t, cond, 5.0)
    with torch.no_grad():
        e_c = z123.unet(
            torch.cat([z, ref.latent.expand(2, -1, -1, -1)], 1), t, encoder_hidden_states=cond.embedding
        ).sample
        e_u = z123.unet(
            torch.cat([z, torch.zeros(2, 4, 16, 16)], 1), t, encoder_hidden_states=torch.zeros_like(cond.embedding)
        ).sample
    torch.testing.assert_close(eps, e_u + 5.0 * (e_c - e_u), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(e_c, e_u)


def test_sds_gives_finite_pixel_gradient_with_per_sample_weight(z123, reference_image):
    ref = z123.reference_condition(reference_image)
    cond = z123.pose_condition(ref, pose_embedding(torch.tensor([90.0, 90.0]), torch.tensor([45.0, 180.0])))
    images = torch.rand(2, 3, 64, 64, requires_grad=True)
    weight = torch.tensor([45.0, 0.0]) / 180.0  # angle weight computed by the stage; 0 for the second view
    out = score_distillation(
        z123, images, cond, SDSConfig(guidance_scale=5.0), weight=weight, generator=torch.Generator().manual_seed(0)
    )
    out["loss_sds"].backward()
    assert torch.isfinite(images.grad).all()
    assert images.grad[0].abs().sum() > 0 and images.grad[1].abs().sum() == 0


def test_bad_folders_are_rejected(tiny_models, tmp_path):
    with pytest.raises(ValueError, match="needs a UNet2DConditionModel with 8 input channels"):
        Zero123Prior.from_pretrained(tiny_models.sd15)
    broken = tmp_path / "zero123-xl"
    shutil.copytree(tiny_models.zero123, broken)
    shutil.rmtree(broken / "cc_projection")
    with pytest.raises(FileNotFoundError, match="cc_projection/ .*clip_camera_projection/"):
        Zero123Prior.from_pretrained(broken)
    shutil.rmtree(broken / "image_encoder")
    with pytest.raises(FileNotFoundError, match=r"image_encoder/config\.json missing in .*zero123-xl"):
        Zero123Prior.from_pretrained(broken)
    with pytest.raises(TypeError, match="Zero123Condition"):
        Zero123Prior.from_pretrained(tiny_models.zero123).predict_noise(
            torch.zeros(1, 4, 16, 16), torch.tensor([1]), None, 5.0
        )
