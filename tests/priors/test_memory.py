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


def vae_checkpointed(prior) -> bool:
    return any(getattr(m, "gradient_checkpointing", False) for m in prior.vae.modules())


def sd_with_reference_grad(tiny_models):
    """A tiny SD1.5 prior, a condition, two renders and their SDS gradient with the default memory layout."""
    prior = StableDiffusionPrior.from_pretrained(tiny_models.sd15, device="cpu")
    condition = prior.text_condition("a panda")
    images = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    plain = image_grad(prior, images, condition)
    assert torch.isfinite(plain).all() and plain.abs().sum() > 0
    return prior, condition, images, plain


def test_vae_checkpointing_keeps_sds_gradients(tiny_models):
    prior, condition, images, plain = sd_with_reference_grad(tiny_models)
    set_vae_gradient_checkpointing(prior, True)
    assert vae_checkpointed(prior)
    assert torch.allclose(plain, image_grad(prior, images, condition), rtol=1e-5, atol=1e-8)
    set_vae_gradient_checkpointing(prior, False)
    assert not vae_checkpointed(prior)


def test_priors_without_a_vae_are_refused():
    with pytest.raises(ValueError, match="no diffusers VAE"):
        set_vae_gradient_checkpointing(object(), True)


def _as_if_on(prior, device: str, networks: tuple[str, ...]) -> None:
    """Move the step networks to `device` and leave the encoders where offload_encoders() puts them."""
    for name in networks:
        getattr(prior, name).to(device)
    prior.device = torch.device(device)
    prompts = getattr(prior, "prompts", None)
    if prompts is not None:
        prompts.move(prior.device)
    prior.offload_encoders()


def test_offloaded_encoders_run_on_the_cpu_and_conditions_land_on_the_prior_device(tiny_models):
    """The meta device stands in for the GPU (no data moves back from it): only the routing is under test."""
    from a124_core.priors.zero123 import Zero123Prior

    sd = StableDiffusionPrior.from_pretrained(tiny_models.sd15, device="cpu")
    on_cpu = sd.text_condition("a panda").cond
    sd.prompts.clear()
    _as_if_on(sd, "meta", ("unet", "vae"))
    encoder = next(sd.text_encoder.parameters())
    assert encoder.device.type == "cpu" and encoder.dtype == torch.float32
    late = sd.text_condition("a panda").cond  # built after the offload: on the CPU, then moved
    assert late.device.type == "meta" and late.shape == on_cpu.shape

    zero = Zero123Prior.from_pretrained(tiny_models.zero123, device="cpu")
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    reference = zero.reference_condition(image)
    _as_if_on(zero, "meta", ("unet", "vae", "projection"))
    assert next(zero.image_encoder.parameters()).device.type == "cpu"
    moved = zero.reference_condition(image)
    assert moved.clip_embedding.device.type == "meta"
    assert moved.clip_embedding.shape == reference.clip_embedding.shape


def test_offload_encoders_round_trip_keeps_conditions(tiny_models):
    sd = StableDiffusionPrior.from_pretrained(tiny_models.sd15, device="cpu")
    before = sd.prompts.encode_uncached("a panda")
    sd.offload_encoders()
    sd.to("cpu")
    torch.testing.assert_close(sd.prompts.encode_uncached("a panda"), before)


def test_vae_checkpointing_setting_resolves_per_device():
    from a124_core.priors.memory import wants_vae_checkpointing

    cuda = torch.device("cuda")
    assert wants_vae_checkpointing("auto", cuda, total_memory_gib=23.6)  # a 24 GB card
    assert not wants_vae_checkpointing("auto", cuda, total_memory_gib=79.1)  # an 80 GB H100
    assert not wants_vae_checkpointing("auto", torch.device("cpu"))
    assert wants_vae_checkpointing("on", torch.device("cpu"))
    assert not wants_vae_checkpointing("off", cuda, total_memory_gib=8.0)


def test_stage_applies_the_vae_checkpointing_setting(tiny_models):
    from dataclasses import replace

    from a124_core.presets import preset
    from a124_core.reference.reference import build_reference
    from a124_core.training.static_stage import StaticPriors, StaticStage

    sd = StableDiffusionPrior.from_pretrained(tiny_models.sd15, device="cpu")
    config = preset("smoke").static
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((16, 12, 48, 52), fill=(200, 120, 60, 255))
    reference = build_reference(image)
    for setting, expected in (("on", True), ("off", False)):
        stage = StaticStage(
            replace(config, loop=replace(config.loop, vae_checkpointing=setting)),
            reference,
            StaticPriors(sd=sd),
            "a toy",
            device="cpu",
        )
        stage.attach()
        assert vae_checkpointed(sd) is expected
        stage.release()
    with pytest.raises(ValueError, match="vae_checkpointing"):
        replace(config.loop, vae_checkpointing="maybe")


def test_channels_last_keeps_sds_gradients(tiny_models):
    from a124_core.priors.memory import set_channels_last

    prior, condition, images, plain = sd_with_reference_grad(tiny_models)
    set_channels_last(prior, True)
    conv = next(m for m in prior.unet.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    scale = float(plain.abs().max())  # another convolution algorithm: equal up to float rounding
    torch.testing.assert_close(image_grad(prior, images, condition), plain, rtol=1e-4, atol=1e-4 * scale)
    set_channels_last(prior, False)
    assert conv.weight.is_contiguous()
