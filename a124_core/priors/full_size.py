"""Full-size priors with random weights, built from the JSON architecture configs shipped in `configs/`.

For benchmarks (time and memory per SDS step without downloading anything) and for shape checks on the
meta device. The weights are random, so outputs are meaningless; the architectures are the published ones
(MVDream's kept in the original config's terms, `mvdream_arch`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from .base import NoiseSchedule, Prior
from .controlnet_tile import ControlNetTilePrior
from .latent import LatentComponents
from .loading import choose_device_dtype, read_json
from .mvdream import MVDreamPrior
from .mvdream_arch import MVDreamArchitecture, noise_schedule
from .mvdream_arch import build_networks as build_mvdream_networks
from .sd import StableDiffusionPrior
from .tiny import write_clip_tokenizer
from .video import TextToVideoPrior
from .zero123 import Zero123Prior

CONFIG_DIR = Path(__file__).parent / "configs"
#: Prior name -> its config file in CONFIG_DIR.
FULL_SIZE_CONFIGS = {
    "sd15": "sd15.json",
    "sd21_base": "sd21_base.json",
    "zero123_xl": "zero123_xl.json",
    "text_to_video_ms_1.7b": "text_to_video_ms_1.7b.json",
    "controlnet_tile_sd15": "controlnet_tile_sd15.json",
}
#: MVDream name -> its architecture in the original config's terms (`mvdream_arch.MVDreamArchitecture`).
MVDREAM_CONFIGS = {"mvdream_sd21": "mvdream_sd21.json", "mvdream_sd15": "mvdream_sd15.json"}
#: CLIP's special token ids (the full vocabulary's), for text encoders built without a tokenizer file.
_CLIP_IDS = {"bos_token_id": 49406, "eos_token_id": 49407}


def load_architecture(name: str) -> dict[str, Any]:
    """The shipped architecture config of prior `name` (see FULL_SIZE_CONFIGS), base configs merged in."""
    if name not in FULL_SIZE_CONFIGS:
        raise ValueError(f"Unknown prior {name!r}; choose one of {sorted(FULL_SIZE_CONFIGS | MVDREAM_CONFIGS)}.")
    cfg = read_json(CONFIG_DIR / FULL_SIZE_CONFIGS[name])
    if "base" in cfg:
        cfg = {**read_json(CONFIG_DIR / cfg["base"]), **{k: v for k, v in cfg.items() if k != "base"}}
    return cfg


def _schedule(cfg: dict[str, Any]) -> NoiseSchedule:
    from diffusers import DDPMScheduler

    keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule")
    return NoiseSchedule(alphas_cumprod=DDPMScheduler(**{k: cfg[k] for k in keys}).alphas_cumprod.float().clone())


def build_networks(name: str, device: torch.device | str = "meta") -> dict[str, torch.nn.Module]:
    """Instantiate every network of prior `name` with random weights directly on `device` (fp32)."""
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    if name in MVDREAM_CONFIGS:
        arch = MVDreamArchitecture.from_json(CONFIG_DIR / MVDREAM_CONFIGS[name])
        pad = 0 if arch.text_encoder["layout"] == "open_clip" else _CLIP_IDS["eos_token_id"]
        with torch.device(device):
            return build_mvdream_networks(arch, SimpleNamespace(**_CLIP_IDS, pad_token_id=pad))
    cfg = load_architecture(name)
    nets: dict[str, torch.nn.Module] = {}
    with torch.device(device):
        unet_cls = UNet3DConditionModel if "3D" in cfg["unet"]["down_block_types"][0] else UNet2DConditionModel
        nets["unet"] = unet_cls(**cfg["unet"])
        nets["vae"] = AutoencoderKL(**cfg["vae"])
        if "text_encoder" in cfg:
            nets["text_encoder"] = CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"]))
        if "image_encoder" in cfg:
            nets["image_encoder"] = CLIPVisionModelWithProjection(CLIPVisionConfig(**cfg["image_encoder"]))
            nets["projection"] = torch.nn.Linear(cfg["projection"]["in_features"], cfg["projection"]["out_features"])
        if "controlnet" in cfg:
            nets["controlnet"] = ControlNetModel(**cfg["controlnet"])
    return nets


def random_prior(
    name: str, device: torch.device | str | None = None, image_size: int | tuple[int, int] | None = None
) -> Prior:
    """A full-size prior with random weights (fp16 on CUDA, fp32 on CPU); prompts use a small CLIP vocabulary."""
    dev, dtype = choose_device_dtype(device)
    return assemble_prior(name, build_networks(name, dev), dev, dtype, image_size)


def fake_prior(
    name: str, dtype: torch.dtype = torch.float16, image_size: int | tuple[int, int] | None = None
) -> Prior:
    """A full-size prior whose weights are FakeTensors in `dtype`: shapes and bytes of a GPU run, no memory.

    Call it, and everything that uses the prior, inside an active `torch._subclasses.FakeTensorMode` (CPU device;
    CPU-only torch builds cannot fake CUDA tensors). benchmarks/estimate_gpu.py counts memory and FLOPs with it.
    """
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built directly in dtype: fake parameters cannot be converted by Module.to
    try:
        nets = build_networks(name, "cpu")
    finally:
        torch.set_default_dtype(default)
    return assemble_prior(name, nets, torch.device("cpu"), dtype, image_size)


def assemble_prior(
    name: str,
    nets: dict[str, torch.nn.Module],
    device: torch.device,
    dtype: torch.dtype,
    image_size: int | tuple[int, int] | None = None,
) -> Prior:
    """The Prior object of `name` around networks from `build_networks`."""
    from transformers import CLIPTokenizer

    if name in MVDREAM_CONFIGS:
        arch = MVDreamArchitecture.from_json(CONFIG_DIR / MVDREAM_CONFIGS[name])
        with tempfile.TemporaryDirectory() as tmp:
            pad = "!" if arch.text_encoder["layout"] == "open_clip" else "<|endoftext|>"
            tokenizer = CLIPTokenizer.from_pretrained(write_clip_tokenizer(Path(tmp), pad_token=pad))
        unet = nets["unet"]
        parts = LatentComponents(
            tokenizer, nets["text_encoder"], unet, nets["vae"], noise_schedule(arch), dict(unet.config)
        )
        return MVDreamPrior(parts, arch, MVDreamPrior.Config(image_size=image_size), device, dtype)
    cfg = load_architecture(name)
    schedule = _schedule(cfg["scheduler"])
    if name == "zero123_xl":
        return Zero123Prior(
            nets["unet"], nets["vae"], nets["image_encoder"], nets["projection"], schedule,
            Zero123Prior.Config(image_size=image_size), device, dtype,
        )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = CLIPTokenizer.from_pretrained(write_clip_tokenizer(Path(tmp)))
    parts = LatentComponents(tokenizer, nets["text_encoder"], nets["unet"], nets["vae"], schedule, cfg["unet"])
    if name in ("sd15", "sd21_base"):
        return StableDiffusionPrior(parts, StableDiffusionPrior.Config(image_size=image_size), device, dtype)
    if name == "controlnet_tile_sd15":
        return ControlNetTilePrior(
            parts, nets["controlnet"], ControlNetTilePrior.Config(image_size=image_size), device, dtype
        )
    return TextToVideoPrior(parts, TextToVideoPrior.Config(image_size=image_size), device, dtype)
