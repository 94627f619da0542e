"""Loading and shared behaviour of the text-conditioned latent priors (SD1.5, ControlNet base, text-to-video).

They share a CLIP tokenizer + text encoder, a KL VAE and an epsilon UNet; only the UNet call differs.
SD1.5 weights come from a diffusers folder or a single-file original-layout `.safetensors` plus a local
config folder (`from_single_file(config=...)`: the only offline-safe way, FACTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..compat import transformers_dtype_kwargs
from ..weight_files import check_safetensors
from .base import NoiseSchedule, Prior, Tokens
from .loading import (
    TRANSFORMERS_WEIGHTS,
    check_unet,
    choose_device_dtype,
    freeze,
    load_schedule,
    native_image_size,
    read_json,
    reject_controlnet_folder,
    require_component,
    require_files,
    require_folder,
    vae_encode,
)
from .text import PromptEncoder, TextCondition

_CONFIG_DIR_FILES = [
    "model_index.json",
    "unet/config.json",
    "vae/config.json",
    "text_encoder/config.json",
    "scheduler/scheduler_config.json",
]


@dataclass
class LatentComponents:
    """The frozen parts of a text-conditioned latent diffusion model."""

    tokenizer: Any  # CLIPTokenizer
    text_encoder: Any  # CLIPTextModel
    unet: Any  # UNet2DConditionModel / UNet3DConditionModel
    vae: Any  # AutoencoderKL
    schedule: NoiseSchedule
    unet_config: dict[str, Any]


def _tokenizer_files(root: Path) -> None:
    tok = Path(root) / "tokenizer"
    if (
        not ((tok / "vocab.json").is_file() and (tok / "merges.txt").is_file())
        and not (tok / "tokenizer.json").is_file()
    ):
        raise FileNotFoundError(
            f"tokenizer/vocab.json + tokenizer/merges.txt (or tokenizer/tokenizer.json) missing in {root}."
        )


def load_text_latent_folder(
    root: Path, unet_class: str, prior: str, device: torch.device, dtype: torch.dtype
) -> LatentComponents:
    """Load tokenizer, text encoder, UNet (of `unet_class`, 4 channels), VAE and schedule from a diffusers folder."""
    from diffusers import AutoencoderKL, UNet2DConditionModel, UNet3DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    root = require_folder(root, prior)
    reject_controlnet_folder(root, prior)
    unet_variant = require_component(root, "unet")
    unet_cfg = check_unet(root, unet_class, 4, prior)  # wrong kind of model: say so before anything else
    _tokenizer_files(root)
    variants = {
        "unet": unet_variant,
        "vae": require_component(root, "vae"),
        "text_encoder": require_component(root, "text_encoder", TRANSFORMERS_WEIGHTS),
    }
    unet_cls = UNet3DConditionModel if unet_class == "UNet3DConditionModel" else UNet2DConditionModel
    kw = {"local_files_only": True, "torch_dtype": dtype}
    tkw = {"local_files_only": True, **transformers_dtype_kwargs(dtype)}
    return LatentComponents(
        tokenizer=CLIPTokenizer.from_pretrained(root / "tokenizer", local_files_only=True),
        text_encoder=freeze(
            CLIPTextModel.from_pretrained(root / "text_encoder", variant=variants["text_encoder"], **tkw),
            device,
            dtype,
        ),
        unet=freeze(unet_cls.from_pretrained(root / "unet", variant=variants["unet"], **kw), device, dtype),
        vae=freeze(AutoencoderKL.from_pretrained(root / "vae", variant=variants["vae"], **kw), device, dtype),
        schedule=load_schedule(root),
        unet_config=unet_cfg,
    )


def check_sd_single_file(path: Path) -> None:
    """Reject non-SD1.x single files (ControlNet, Zero123, inpainting, SD2/SDXL) before diffusers reads them."""
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: single-file checkpoints must be .safetensors (pickled .ckpt files are not loaded).")
    header = check_safetensors(path)  # a truncated download: one line naming the file, from the header alone
    keys = set(header) - {"__metadata__"}
    conv_in = "model.diffusion_model.input_blocks.0.0.weight"
    if any(k.startswith(("control_model.", "input_hint_block.", "controlnet_cond_embedding.")) for k in keys):
        raise ValueError(f"{path} is a ControlNet checkpoint, not an SD1.5 model; pass it as the ControlNet.")
    if conv_in not in keys:
        raise ValueError(f"{path} is not an SD1.x single-file checkpoint (no '{conv_in}').")
    channels = header[conv_in]["shape"][1]
    if channels != 4:
        raise ValueError(f"{path}: UNet has {channels} input channels (SD1.5 has 4; 8 is Zero123, 9 inpainting).")
    if not any(k.startswith("cond_stage_model.transformer.") for k in keys):
        raise ValueError(
            f"{path}: no CLIP ViT-L text encoder (cond_stage_model.transformer.*): SD2/SDXL not supported."
        )


def load_sd15_single_file(
    path: Path, config_dir: Path | None, device: torch.device, dtype: torch.dtype
) -> LatentComponents:
    """SD1.5 from one original-layout .safetensors plus a weightless diffusers config folder."""
    from diffusers import StableDiffusionPipeline

    if not path.is_file():
        raise FileNotFoundError(f"SD1.5 checkpoint {path} does not exist.")
    if config_dir is None:
        raise ValueError(
            f"Loading the single file {path} offline needs config_dir: a folder with the SD1.5 repo's configs and "
            f"tokenizer files (no weights): {', '.join(_CONFIG_DIR_FILES)}, tokenizer/."
        )
    config_dir = require_folder(config_dir, "SD1.5 config")
    require_files(config_dir, _CONFIG_DIR_FILES, "SD1.5 config folder")
    _tokenizer_files(config_dir)
    check_sd_single_file(path)
    pipe = StableDiffusionPipeline.from_single_file(
        str(path),
        config=str(config_dir),
        local_files_only=True,
        safety_checker=None,
        requires_safety_checker=False,
        torch_dtype=dtype,
    )
    return LatentComponents(
        tokenizer=pipe.tokenizer,
        text_encoder=freeze(pipe.text_encoder, device, dtype),
        unet=freeze(pipe.unet, device, dtype),
        vae=freeze(pipe.vae, device, dtype),
        schedule=load_schedule(config_dir),
        unet_config=read_json(config_dir / "unet" / "config.json"),
    )


def load_sd15(
    path: str | Path, config_dir: str | Path | None, device: torch.device, dtype: torch.dtype, prior: str
) -> LatentComponents:
    """SD1.5 components from a diffusers folder or a single .safetensors file (+ config_dir)."""
    path = Path(path)
    if path.is_file() or path.suffix in (".safetensors", ".ckpt", ".pt", ".bin"):
        return load_sd15_single_file(path, Path(config_dir) if config_dir else None, device, dtype)
    return load_text_latent_folder(path, "UNet2DConditionModel", prior, device, dtype)


class TextLatentPrior(Prior):
    """Common parts of SD1.5, ControlNet-Tile and text-to-video: text conditions, VAE encoding, device moves."""

    def __init__(
        self, parts: LatentComponents, image_size: int | tuple[int, int], device: torch.device, dtype: torch.dtype
    ):
        self.tokenizer = parts.tokenizer
        self.text_encoder = freeze(parts.text_encoder, device, dtype)
        self.unet = freeze(parts.unet, device, dtype)
        self.vae = freeze(parts.vae, device, dtype)
        self.schedule = parts.schedule
        self.image_size = image_size
        self.device = device
        self.dtype = dtype
        self.prompts = PromptEncoder(self.tokenizer, self.text_encoder)

    @staticmethod
    def _device_dtype(device: torch.device | str | None) -> tuple[torch.device, torch.dtype]:
        return choose_device_dtype(device)

    def _native_size(self, unet_config: dict[str, Any]) -> int:
        return native_image_size(unet_config, self.vae)

    def text_condition(self, prompt: str, negative: str = "", tokens: Tokens | None = None) -> TextCondition:
        """Embeddings of the prompt (with textual-inversion `tokens`, if any) and the negative prompt (cached when
        plain); the prior itself never learns the tokens."""
        return self.prompts.text_condition(prompt, negative, tokens)

    def encode_images(self, images: Tensor) -> Tensor:
        """images [B, 3, H, W] in [0, 1] -> scaled latents [B, 4, H/8, W/8] (float32, differentiable)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"Expected images [B, 3, H, W], got {tuple(images.shape)}.")
        return vae_encode(self.vae, images)

    def _unet_eps(self, x: Tensor, t: Tensor, emb: Tensor, **kwargs: Any) -> Tensor:
        """One UNet call in the prior's dtype, returned in float32."""
        with torch.no_grad():
            out = self.unet(
                x.to(self.device, self.dtype), t.to(self.device), encoder_hidden_states=emb.to(self.dtype), **kwargs
            )
        return out.sample.float()

    def offload_encoders(self) -> None:
        self.text_encoder.to(device="cpu", dtype=torch.float32)

    def to(self, device: torch.device | str) -> TextLatentPrior:
        """Move all networks and cached embeddings; the dtype follows the device (fp16 on CUDA)."""
        self.device, self.dtype = choose_device_dtype(device)
        for net in (self.text_encoder, self.unet, self.vae):
            net.to(device=self.device, dtype=self.dtype)
        self.prompts.move(self.device)
        return self


def check_text_condition(condition: Any, prior: str) -> TextCondition:
    if not isinstance(condition, TextCondition):
        raise TypeError(
            f"{prior}.predict_noise needs a TextCondition (from text_condition(), or view_dependent_condition()"
            f".at_azimuth(az)), got {type(condition).__name__}."
        )
    return condition
