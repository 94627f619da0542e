"""StableDiffusionPrior: offline loading (folder and single file), CFG batching, caches, view prompts, bad input."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import save_file

from a124_core.guidance.sds import SDSConfig, score_distillation
from a124_core.priors.base import PriorKind, check_prior_kind
from a124_core.priors.sd import StableDiffusionPrior


@pytest.fixture(scope="module")
def sd(tiny_models):
    return StableDiffusionPrior.from_pretrained(tiny_models.sd15, device="cpu")


def test_loads_offline_with_spec_defaults(sd, tiny_models):
    assert sd.kind is PriorKind.IMAGE_TEXT
    check_prior_kind(sd, PriorKind.IMAGE_TEXT, "2D prior")
    assert sd.image_size == tiny_models.image_size  # native: UNet sample_size x VAE factor
    assert sd.dtype == torch.float32 and sd.device.type == "cpu"
    assert sd.schedule.num_train_timesteps == 1000
    assert not any(p.requires_grad for p in sd.unet.parameters())
    with pytest.raises(ValueError, match="expects a prior of kind 'image-pose'"):
        check_prior_kind(sd, PriorKind.IMAGE_POSE, "Zero123 slot")


def test_single_file_predicts_like_the_folder(sd, tiny_models):
    single = StableDiffusionPrior.from_pretrained(tiny_models.sd15_single_file, config_dir=tiny_models.sd15_config_dir)
    z = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([250, 700])
    a = sd.predict_noise(z, t, sd.text_condition("a panda"), 7.5)
    b = single.predict_noise(z, t, single.text_condition("a panda"), 7.5)
    torch.testing.assert_close(a, b)


def test_batched_cfg_equals_two_separate_calls(sd):
    cond = sd.text_condition("a photo of a dog", "blurry")
    z = torch.randn(3, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([100, 500, 900])
    s = 7.5
    eps = sd.predict_noise(z, t, cond, s)
    with torch.no_grad():
        e_c = sd.unet(z, t, encoder_hidden_states=cond.cond.expand(3, -1, -1)).sample
        e_u = sd.unet(z, t, encoder_hidden_states=cond.uncond.expand(3, -1, -1)).sample
    torch.testing.assert_close(eps, e_u + s * (e_c - e_u), rtol=1e-4, atol=1e-5)
    assert eps.dtype == torch.float32
    assert not torch.allclose(e_c, e_u)  # the oracle is not vacuous


def test_cached_embeddings_equal_fresh_ones(sd):
    cond = sd.text_condition("a high-resolution dslr image of a panda")
    again = sd.text_condition("a high-resolution dslr image of a panda")
    assert again.cond is cond.cond  # served from the cache, not recomputed
    fresh = sd.prompts.encode_uncached("a high-resolution dslr image of a panda")
    torch.testing.assert_close(cond.cond, fresh)
    assert cond.cond.shape == (1, 77, 32)
    assert not torch.allclose(cond.cond, cond.uncond)


def test_view_dependent_embeddings_interpolate_by_azimuth(sd):
    vd = sd.view_dependent_condition("a panda")
    torch.testing.assert_close(vd.front, sd.prompts.encode_uncached("a panda, front view"))
    az = torch.tensor([0.0, 90.0, 180.0, -180.0, 45.0, -45.0, 135.0, 405.0])
    e = vd.at_azimuth(az).cond
    f, s, b = vd.front[0], vd.side[0], vd.back[0]
    for i, want in enumerate([f, s, b, b, 0.5 * (f + s), 0.5 * (f + s), 0.5 * (s + b), 0.5 * (f + s)]):
        torch.testing.assert_close(e[i], want, msg=f"azimuth {az[i].item()}")
    assert vd.at_azimuth(30.0).cond.shape == (1, 77, 32)


def test_sds_gives_finite_pixel_gradient(sd):
    images = torch.rand(2, 3, 48, 48, requires_grad=True)  # any size: resized inside
    out = score_distillation(
        sd,
        images,
        sd.text_condition("a panda"),
        SDSConfig(guidance_scale=100.0),
        generator=torch.Generator().manual_seed(0),
    )
    out["loss_sds"].backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    assert ((out["t"] >= 200) & (out["t"] <= 600)).all()


def test_missing_files_name_folder_and_expected_files(tiny_models, tmp_path):
    broken = tmp_path / "stable-diffusion-v1-5"
    shutil.copytree(tiny_models.sd15, broken)
    (broken / "unet" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"unet/config\.json missing in .*stable-diffusion-v1-5"):
        StableDiffusionPrior.from_pretrained(broken)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        StableDiffusionPrior.from_pretrained(tmp_path / "nowhere")
    shutil.copy(tiny_models.sd15 / "unet" / "config.json", broken / "unet" / "config.json")
    shutil.rmtree(broken / "tokenizer")
    with pytest.raises(FileNotFoundError, match="tokenizer/vocab.json"):
        StableDiffusionPrior.from_pretrained(broken)


def test_wrong_kind_of_checkpoint_is_rejected_at_load(tiny_models, tmp_path):
    with pytest.raises(ValueError, match="is a ControlNet"):
        StableDiffusionPrior.from_pretrained(tiny_models.controlnet_tile)
    with pytest.raises(ValueError, match="Zero123"):
        StableDiffusionPrior.from_pretrained(tiny_models.zero123)
    with pytest.raises(ValueError, match="text-to-video"):
        StableDiffusionPrior.from_pretrained(tiny_models.video)
    with pytest.raises(ValueError, match="config_dir"):
        StableDiffusionPrior.from_pretrained(tiny_models.sd15_single_file)
    from safetensors.torch import load_file

    cn = tmp_path / "control_v11f1e_sd15_tile.safetensors"
    save_file(load_file(str(tiny_models.controlnet_tile / "diffusion_pytorch_model.safetensors")), str(cn))
    with pytest.raises(ValueError, match="ControlNet checkpoint"):
        StableDiffusionPrior.from_pretrained(cn, config_dir=tiny_models.sd15_config_dir)
    with pytest.raises(ValueError, match=r"\.safetensors"):
        (tmp_path / "model.ckpt").write_bytes(b"not a pickle")
        StableDiffusionPrior.from_pretrained(tmp_path / "model.ckpt", config_dir=tiny_models.sd15_config_dir)


def test_wrong_condition_type_is_a_clear_error(sd):
    with pytest.raises(TypeError, match="needs a TextCondition"):
        sd.predict_noise(torch.zeros(1, 4, 16, 16), torch.tensor([10]), sd.view_dependent_condition("a"), 7.5)
