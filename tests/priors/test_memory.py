import pytest
import torch

from a124_core.guidance.sds import SDSConfig, score_distillation
from a124_core.priors.memory import set_vae_gradient_checkpointing
from a124_core.priors.sd import StableDiffusionPrior


def image_grad(prior, images, condition):
    images = images.clone().requires_grad_(True)
    gen = torch.Generator().manual_seed(0)
    loss = score_distillation(prior, images, condition, SDSConfig(guidance_scale=7.5), generator=gen)["loss_sds"]
    loss.backward()
    return images.grad


def test_vae_checkpointing_keeps_sds_gradients(tiny_models):
    prior = StableDiffusionPrior.from_pretrained(tiny_models.sd15, device="cpu")
    condition = prior.text_condition("a panda")
    images = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    plain = image_grad(prior, images, condition)
    set_vae_gradient_checkpointing(prior, True)
    assert any(getattr(m, "gradient_checkpointing", False) for m in prior.vae.modules())
    checkpointed = image_grad(prior, images, condition)
    assert torch.isfinite(plain).all() and plain.abs().sum() > 0
    assert torch.allclose(plain, checkpointed, rtol=1e-5, atol=1e-8)
    set_vae_gradient_checkpointing(prior, False)
    assert not any(getattr(m, "gradient_checkpointing", False) for m in prior.vae.modules())


def test_priors_without_a_vae_are_refused():
    with pytest.raises(ValueError, match="no diffusers VAE"):
        set_vae_gradient_checkpointing(object(), True)
