"""Loading and shared behaviour of the text-conditioned latent priors (SD1.5 / SD2.1-base, ControlNet base,
text-to-video, MVDream).

They share a CLIP tokenizer + text encoder, a KL VAE and a UNet; only the UNet call differs. A UNet trained for
v-prediction (SD2.1 768) is read as epsilon: eps = sqrt(a) v + sqrt(1 - a) z_t. SD weights come from a diffusers
folder or a single-file original-layout `.safetensors` plus a local config folder (`from_single_file(config=...)`:
the only offline-safe way, FACTS.md); SD2's OpenCLIP text tower is converted by diffusers from its config folder.
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
    prediction_type,
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
    #: What the UNet outputs: "epsilon" or "v_prediction" (converted to epsilon by the prior).
    prediction_type: str = "epsilon"


#: Prediction types a text latent prior reads (v is converted to epsilon).
PREDICTIONS = ("epsilon", "v_prediction")


def tokenizer_files(folder: Path) -> None:
    """A CLIP tokenizer folder must hold vocab.json + merges.txt (or tokenizer.json)."""
    tok = Path(folder)
    if (
        not ((tok / "vocab.json").is_file() and (tok / "merges.txt").is_file())
        and not (tok / "tokenizer.json").is_file()
    ):
        raise FileNotFoundError(f"{tok}/vocab.json + merges.txt (or {tok.name}/tokenizer.json) missing.")


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
    tokenizer_files(root / "tokenizer")
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
        schedule=load_schedule(root, PREDICTIONS),
        unet_config=unet_cfg,
        prediction_type=prediction_type(root, PREDICTIONS),
    )


def check_sd_single_file(path: Path) -> None:
    """Reject single files that are not SD1.x / SD2.x text-to-image models (ControlNet, Zero123, inpainting, SDXL,
    MVDream) before diffusers reads them."""
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: single-file checkpoints must be .safetensors (pickled .ckpt files are not loaded).")
    header = check_safetensors(path)  # a truncated download: one line naming the file, from the header alone
    keys = set(header) - {"__metadata__"}
    conv_in = "model.diffusion_model.input_blocks.0.0.weight"
    if any(k.startswith(("control_model.", "input_hint_block.", "controlnet_cond_embedding.")) for k in keys):
        raise ValueError(f"{path} is a ControlNet checkpoint, not an SD model; pass it as the ControlNet.")
    if "model.diffusion_model.camera_embed.0.weight" in keys:
        raise ValueError(f"{path} is an MVDream checkpoint; load it as the multi-view prior (priors.mvdream).")
    if any(k.startswith("conditioner.embedders.") for k in keys):
        raise ValueError(f"{path} is an SDXL checkpoint: not supported (SD1.5 or SD2.1-base).")
    if conv_in not in keys:
        raise ValueError(f"{path} is not an SD1.x / SD2.x single-file checkpoint (no '{conv_in}').")
    channels = header[conv_in]["shape"][1]
    if channels != 4:
        raise ValueError(f"{path}: UNet has {channels} input channels (SD has 4; 8 is Zero123, 9 inpainting).")
    if not any(k.startswith(("cond_stage_model.transformer.", "cond_stage_model.model.")) for k in keys):
        raise ValueError(
            f"{path}: no text encoder (cond_stage_model.transformer.* for SD1's CLIP, cond_stage_model.model.* for "
            f"SD2's OpenCLIP)."
        )


def load_sd15_single_file(
    path: Path, config_dir: Path | None, device: torch.device, dtype: torch.dtype
) -> LatentComponents:
    """SD1.5 / SD2.1-base from one original-layout .safetensors plus the model's weightless diffusers config folder."""
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
    tokenizer_files(config_dir / "tokenizer")
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
        schedule=load_schedule(config_dir, PREDICTIONS),
        unet_config=read_json(config_dir / "unet" / "config.json"),
        prediction_type=prediction_type(config_dir, PREDICTIONS),
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
        self.prediction_type = parts.prediction_type
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
        """One UNet call in the prior's dtype, returned in float32 as epsilon (x: z_t, t: [N] timesteps)."""
        with torch.no_grad():
            out = self.unet(
                x.to(self.device, self.dtype), t.to(self.device), encoder_hidden_states=emb.to(self.dtype), **kwargs
            ).sample.float()
            if self.prediction_type == "v_prediction":  # v = sqrt(a) eps - sqrt(1 - a) z0 -> eps
                a = self.schedule.alphas_cumprod.to(out.device)[t.to(out.device)].view(-1, *[1] * (out.dim() - 1))
                out = a.sqrt() * out + (1 - a).sqrt() * x.to(out.device).float()
        return out

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
