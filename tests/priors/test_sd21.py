"""SD2.1-base as the 2D prior beside MVDream: diffusers folder and single file (OpenCLIP text tower), "!" padding,
v-prediction read as epsilon, and the OpenCLIP key layout against diffusers' own converter."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from a124_core.priors.base import PriorKind, check_prior_kind
from a124_core.priors.ldm_format import OPEN_CLIP_PREFIX, from_original, open_clip_key, text_encoder_to_open_clip
from a124_core.priors.sd import StableDiffusionPrior


@pytest.fixture(scope="module")
def sd21(tiny_models):
    return StableDiffusionPrior.from_pretrained(tiny_models.sd21, device="cpu")


def test_folder_and_single_file_load_the_same_model(tiny_models, sd21):
    check_prior_kind(sd21, PriorKind.IMAGE_TEXT, "2D")
    single = StableDiffusionPrior.from_pretrained(
        tiny_models.sd21_single_file, device="cpu", config_dir=tiny_models.sd21_config_dir
    )
    assert sd21.tokenizer.pad_token_id == 0 and sd21.text_encoder.config.hidden_act == "gelu"
    assert sd21.unet.config.use_linear_projection and sd21.prediction_type == "epsilon"
    cond = sd21.text_condition("a panda", "blurry")
    torch.testing.assert_close(single.text_condition("a panda", "blurry").cond, cond.cond, rtol=0, atol=1e-6)
    z, t = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor([100, 700])
    eps = sd21.predict_noise(z, t, cond, 100.0)
    torch.testing.assert_close(single.predict_noise(z, t, single.text_condition("a panda", "blurry"), 100.0), eps)


def test_v_prediction_is_read_as_epsilon(tiny_models, sd21, tmp_path):
    folder = tmp_path / "sd21-v"
    shutil.copytree(tiny_models.sd21, folder)
    cfg_path = folder / "scheduler" / "scheduler_config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "prediction_type": "v_prediction"}))
    v_prior = StableDiffusionPrior.from_pretrained(folder, device="cpu")
    assert v_prior.prediction_type == "v_prediction"
    cond = v_prior.text_condition("a cat")
    z, t = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(1)), torch.tensor([50, 900])
    v = sd21.predict_noise(z, t, cond, 7.5)  # same weights read as epsilon: the raw network output, CFG'd
    a = sd21.schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(v_prior.predict_noise(z, t, cond, 7.5), a.sqrt() * v + (1 - a).sqrt() * z)


def test_open_clip_layout_inverts_and_matches_diffusers(sd21):
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint

    state = sd21.text_encoder.state_dict()
    ldm = text_encoder_to_open_clip(state, 32)
    assert OPEN_CLIP_PREFIX + "transformer.resblocks.0.attn.in_proj_weight" in ldm
    theirs = {
        k.removeprefix("text_model."): v for k, v in convert_open_clip_checkpoint(sd21.text_encoder, ldm).items()
    }
    ours = {k.removeprefix("text_model."): v for k, v in state.items()}
    assert set(theirs) == set(ours) and all(torch.equal(theirs[k], v) for k, v in ours.items())
    key_map = {k: OPEN_CLIP_PREFIX + open_clip_key(k) for k in state}
    back, missing, _ = from_original(ldm, key_map, {k: v.shape for k, v in state.items()})
    assert not missing and all(torch.equal(back[k], v) for k, v in state.items())


def test_sdxl_and_mvdream_single_files_are_refused(tiny_models, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(tiny_models.sd21_single_file))
    save_file({**state, "conditioner.embedders.0.x": torch.zeros(1)}, str(tmp_path / "xl.safetensors"))
    with pytest.raises(ValueError, match="SDXL"):
        StableDiffusionPrior.from_pretrained(tmp_path / "xl.safetensors", config_dir=tiny_models.sd21_config_dir)
    save_file(
        {**state, "model.diffusion_model.camera_embed.0.weight": torch.zeros(1)}, str(tmp_path / "mv.safetensors")
    )
    with pytest.raises(ValueError, match="MVDream checkpoint"):
        StableDiffusionPrior.from_pretrained(tmp_path / "mv.safetensors", config_dir=tiny_models.sd21_config_dir)
