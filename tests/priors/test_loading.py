"""Shared loading helpers: fp16-variant folders, device moves, schedule, clear errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from a124_core.priors.loading import choose_device_dtype, load_schedule, require_component
from a124_core.priors.sd import StableDiffusionPrior


def test_fp16_variant_only_folder_loads_the_same_weights(tiny_models, tmp_path):
    folder = tmp_path / "sd15-fp16"
    shutil.copytree(tiny_models.sd15, folder)
    for sub, name in (
        ("unet", "diffusion_pytorch_model"),
        ("vae", "diffusion_pytorch_model"),
        ("text_encoder", "model"),
    ):
        (folder / sub / f"{name}.safetensors").rename(folder / sub / f"{name}.fp16.safetensors")
    assert require_component(folder, "unet") == "fp16"
    a = StableDiffusionPrior.from_pretrained(folder, device="cpu")
    b = StableDiffusionPrior.from_pretrained(tiny_models.sd15, device="cpu")
    z, t = torch.randn(1, 4, 16, 16), torch.tensor([321])
    torch.testing.assert_close(
        a.predict_noise(z, t, a.text_condition("a dog"), 7.5), b.predict_noise(z, t, b.text_condition("a dog"), 7.5)
    )
    (folder / "vae" / "diffusion_pytorch_model.fp16.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"No weights in .*vae: expected one of diffusion_pytorch_model"):
        StableDiffusionPrior.from_pretrained(folder)


def test_schedule_and_device_choice(tiny_models, tmp_path):
    sched = load_schedule(tiny_models.sd15)
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    torch.testing.assert_close(sched.alphas_cumprod, torch.cumprod(1 - betas, 0).float())
    assert choose_device_dtype("cpu") == (torch.device("cpu"), torch.float32)
    folder = tmp_path / "v"
    shutil.copytree(tiny_models.sd15 / "scheduler", folder / "scheduler")
    cfg = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps({**cfg, "prediction_type": "v_prediction"}))
    with pytest.raises(ValueError, match="epsilon only"):
        load_schedule(folder)


def test_to_moves_and_keeps_the_cache(tiny_models):
    prior = StableDiffusionPrior.from_pretrained(tiny_models.sd15, device="cpu")
    cond = prior.text_condition("a cat")
    assert prior.to("cpu") is prior
    assert prior.dtype == torch.float32 and prior.device.type == "cpu"
    torch.testing.assert_close(prior.text_condition("a cat").cond, cond.cond)
