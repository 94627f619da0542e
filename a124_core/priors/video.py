"""Text-to-video prior: ModelScope 1.7B or Zeroscope v2 (UNet3DConditionModel), SPEC 1 step 2, SPEC 5.

A clip of F rendered frames is VAE-encoded frame by frame and noised with one timestep for the whole clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .base import PriorKind, cfg_combine
from .latent import TextLatentPrior, check_text_condition, load_text_latent_folder
from .loading import vae_decode


class TextToVideoPrior(TextLatentPrior):
    """Video epsilon prior over latents [1, 4, F, h, w]."""

    kind = PriorKind.VIDEO_TEXT

    @dataclass
    class Config:
        #: Frame size (square int or (H, W)); None = native (256 for ModelScope). Zeroscope v2: e.g. (80, 144).
        #: The clip's frame count is the stage's (its time sampling), not the prior's.
        image_size: int | tuple[int, int] | None = None

    def __init__(self, parts: Any, config: TextToVideoPrior.Config, device: torch.device, dtype: torch.dtype):
        super().__init__(parts, 0, device, dtype)
        self.cfg = config
        size = config.image_size or self._native_size(parts.unet_config)
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else int(size)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        config: TextToVideoPrior.Config | None = None,
        device: torch.device | str | None = None,
    ) -> TextToVideoPrior:
        """Load a diffusers text-to-video folder (model_index, unet/, vae/, text_encoder/, tokenizer/, scheduler/)."""
        dev, dtype = cls._device_dtype(device)
        parts = load_text_latent_folder(Path(path), "UNet3DConditionModel", "text-to-video", dev, dtype)
        return cls(parts, config or cls.Config(), dev, dtype)

    def encode_images(self, images: Tensor) -> Tensor:
        """frames [F, 3, H, W] in [0, 1] -> latents [1, 4, F, h, w] (float32, differentiable)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"Expected frames [F, 3, H, W], got {tuple(images.shape)}.")
        return super().encode_images(images).permute(1, 0, 2, 3).unsqueeze(0)

    def decode_latents(self, latents: Tensor) -> Tensor:
        """latents [1, 4, F, h, w] -> frames [F, 3, H, W] in [0, 1] (float32, no gradient): a one-step denoised clip
        seen as video frames (Dream-in-4D's decoded-RGB loss)."""
        if latents.dim() != 5 or latents.shape[0] != 1:
            raise ValueError(f"Expected one clip's latents [1, 4, F, h, w], got {tuple(latents.shape)}.")
        return vae_decode(self.vae, latents[0].permute(1, 0, 2, 3))

    def predict_noise(self, noisy_latents: Tensor, t: Tensor, condition: Any, guidance_scale: float) -> Tensor:
        """noisy_latents [B, 4, F, h, w], t [B] (one per clip) -> CFG epsilon (float32); one batched call."""
        if noisy_latents.dim() != 5:
            raise ValueError(f"Video latents must be [B, 4, F, h, w], got {tuple(noisy_latents.shape)}.")
        cond = check_text_condition(condition, "TextToVideoPrior")
        c, u = cond.batched(noisy_latents.shape[0])
        eps = self._unet_eps(torch.cat([noisy_latents] * 2), torch.cat([t, t]), torch.cat([u, c]))
        return cfg_combine(eps, guidance_scale)
