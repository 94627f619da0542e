"""The ComfyUI-loader adapters give what the diffusers priors give on the same weights (oracle), stay
differentiable through ComfyUI's inference-mode VAE weights, and train a stage."""

from __future__ import annotations

import math

import fake_comfy_models as fc
import pytest
import torch
from node_env import node_classes

from a124_core.priors.zero123 import pose_embedding


@pytest.fixture(scope="module")
def priors(models_dir):
    from a124_core.priors.controlnet_tile import ControlNetTilePrior
    from a124_core.priors.sd import StableDiffusionPrior
    from a124_core.priors.zero123 import Zero123Prior

    sd = StableDiffusionPrior.from_pretrained(models_dir / "diffusers" / "stable-diffusion-v1-5", device="cpu")
    z123 = Zero123Prior.from_pretrained(models_dir / "diffusers" / "zero123-xl", device="cpu")
    cn = ControlNetTilePrior.from_pretrained(
        models_dir / "controlnet" / "control_v11f1e_sd15_tile",
        models_dir / "diffusers" / "stable-diffusion-v1-5",
        device="cpu",
    )
    return sd, z123, cn


def comfy_objects(prior, cc_projection=None):
    """MODEL / VAE made the way ComfyUI's loaders hand them over: under inference mode (inference tensors)."""
    with torch.inference_mode():
        vae = fc.VAE(prior.vae)
        scale = prior.vae.config.scaling_factor
        model = fc.ModelPatcher(fc.BaseModel(prior.unet, prior.schedule.alphas_cumprod, scale, cc_projection))
        fake_vae = fc.VAE(type(prior.vae).from_config(prior.vae.config))
        fake_vae.first_stage_model.load_state_dict(vae.first_stage_model.state_dict())
    return model, fake_vae


def test_sd_adapter_matches_diffusers_prior(pack, comfy_env, priors):
    from comfyui_animate124.nodes.comfy_priors import ComfySDPrior

    sd = priors[0]
    model, vae = comfy_objects(sd)
    assert next(vae.first_stage_model.parameters()).is_inference()
    (adapter,) = node_classes(pack)["A124_SD15PriorFromComfy"].execute(model, fc.CLIP(sd.prompts), vae, 32)
    assert isinstance(adapter, ComfySDPrior)
    assert torch.allclose(adapter.schedule.alphas_cumprod, sd.schedule.alphas_cumprod, rtol=1e-5)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 32, 32, generator=g).requires_grad_()
    latents = adapter.encode_images(images)
    assert torch.allclose(latents, sd.encode_images(images), atol=1e-5)
    latents.square().sum().backward()  # differentiable although ComfyUI's VAE weights are inference tensors
    assert images.grad is not None and images.grad.abs().sum() > 0
    noisy = torch.randn(2, 4, 16, 16, generator=g)
    t = torch.tensor([250, 700])
    for cond in (
        sd.text_condition("a photo of a panda", "blurry"),
        sd.view_dependent_condition("a panda").at_azimuth(torch.tensor([30.0, 150.0])),
    ):
        ours = adapter.predict_noise(noisy, t, cond, 7.5)
        assert torch.allclose(ours, sd.predict_noise(noisy, t, cond, 7.5), atol=1e-4), (
            (ours - sd.predict_noise(noisy, t, cond, 7.5)).abs().max()
        )
    a = adapter.text_condition("a photo of a panda", "blurry")
    b = sd.text_condition("a photo of a panda", "blurry")
    assert torch.equal(a.cond, b.cond) and torch.equal(a.uncond, b.uncond)


def test_zero123_adapter_matches_diffusers_prior(pack, comfy_env, priors):
    z123 = priors[1]
    model, vae = comfy_objects(z123, cc_projection=z123.projection)
    (adapter,) = node_classes(pack)["A124_Zero123PriorFromComfy"].execute(model, fc.ClipVision(z123), vae, 32)
    image = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    ref_a, ref_b = adapter.reference_condition(image), z123.reference_condition(image)
    assert torch.allclose(ref_a.latent, ref_b.latent, atol=1e-5) and torch.allclose(
        ref_a.clip_embedding, ref_b.clip_embedding
    )
    polar, azimuth = torch.tensor([90.0, 60.0]), torch.tensor([0.0, 90.0])
    cond_a = adapter.pose_condition(ref_a, pose_embedding(polar, azimuth))
    # ComfyUI's Stable Zero123 conditioning: 4th pose component rad(90); reference view [0, 0, 1, pi/2].
    assert torch.allclose(cond_a.pose[0], torch.tensor([0.0, 0.0, 1.0, math.pi / 2]), atol=1e-6)
    cond_b = z123.pose_condition(ref_b, pose_embedding(polar, azimuth, radius_delta=torch.full((2,), math.pi / 2)))
    assert torch.allclose(cond_a.embedding, cond_b.embedding, atol=1e-5)
    noisy, t = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(2)), torch.tensor([300, 500])
    assert torch.allclose(
        adapter.predict_noise(noisy, t, cond_a, 5.0), z123.predict_noise(noisy, t, cond_b, 5.0), atol=1e-4
    )


def test_zero123_adapter_rejects_plain_sd_model(pack, comfy_env, priors):
    model, vae = comfy_objects(priors[0])
    with pytest.raises(ValueError, match="cc_projection"):
        node_classes(pack)["A124_Zero123PriorFromComfy"].execute(model, fc.ClipVision(priors[1]), vae, 32)


def test_controlnet_adapter_matches_diffusers_prior(pack, comfy_env, priors):
    cn = priors[2]
    model, vae = comfy_objects(cn)
    net = fc.ControlNet(cn.controlnet)
    (adapter,) = node_classes(pack)["A124_ControlNetTilePriorFromComfy"].execute(
        net, model, fc.CLIP(cn.prompts), vae, 1.0
    )
    g = torch.Generator().manual_seed(3)
    control = torch.rand(2, 3, 64, 64, generator=g)  # the scoring size of these latents (the term resizes)
    text = cn.text_condition("a photo of a panda", "blurry")
    cond_a, cond_b = adapter.control_condition(text, control), cn.control_condition(text, control)
    noisy, t = torch.randn(2, 4, 32, 32, generator=g), torch.tensor([300, 600])
    ours = adapter.predict_noise(noisy, t, cond_a, 7.5)
    assert torch.allclose(ours, cn.predict_noise(noisy, t, cond_b, 7.5), atol=1e-4)


def test_static_stage_with_adapter_priors(pack, comfy_env, priors, panda_rgba):
    """The adapters drive a training stage under ComfyUI's inference mode (smoke preset)."""
    sd, z123 = priors[0], priors[1]
    model, vae = comfy_objects(sd)
    zmodel, zvae = comfy_objects(z123, cc_projection=z123.projection)
    (sd_a,) = node_classes(pack)["A124_SD15PriorFromComfy"].execute(model, fc.CLIP(sd.prompts), vae, 32)
    (z_a,) = node_classes(pack)["A124_Zero123PriorFromComfy"].execute(zmodel, fc.ClipVision(z123), zvae, 32)
    image, mask = panda_rgba
    ref, _, _ = node_classes(pack)["A124_Reference"].execute(image, 0.2, mask=mask)
    with torch.inference_mode():
        scene, preview, _ = node_classes(pack)["A124_StaticStage"].execute(
            "a photo of a panda", "smoke", 0, 3, reference=ref, sd_prior=sd_a, zero123_prior=z_a, run_name="adapters"
        )
    assert scene.complete and torch.isfinite(preview).all()
    # Textual inversion needs the diffusers SD prior and says so.
    with pytest.raises(ValueError, match="Load SD1.5 Prior"):
        node_classes(pack)["A124_TextualInversion"].execute(sd_a, ref, "_panda_", "panda", "smoke", 1, 1, 0, 1)
