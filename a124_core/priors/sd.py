"""Stable Diffusion 1.5: the image-text prior of the static stage (SPEC 1, 5)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .base import PriorKind, cfg_combine
from .latent import TextLatentPrior, check_text_condition, load_sd15
from .text import ViewDependentTextCondition


class StableDiffusionPrior(TextLatentPrior):
    """SD1.5 epsilon prior; renders are resized to `image_size` (512 for SD1.5) and VAE-encoded."""

    kind = PriorKind.IMAGE_TEXT

    @dataclass
    class Config:
        #: Render size fed to the VAE; None = the model's native size (UNet sample_size x 8 = 512 for SD1.5).
        image_size: int | None = None

    def __init__(self, parts: Any, config: StableDiffusionPrior.Config, device: torch.device, dtype: torch.dtype):
        super().__init__(parts, 0, device, dtype)
        self.cfg = config
        self.image_size = config.image_size or self._native_size(parts.unet_config)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        config: StableDiffusionPrior.Config | None = None,
        device: torch.device | str | None = None,
        config_dir: str | Path | None = None,
    ) -> StableDiffusionPrior:
        """Load from a diffusers folder, or from a single .safetensors file plus `config_dir` (local only)."""
        dev, dtype = cls._device_dtype(device)
        parts = load_sd15(path, config_dir, dev, dtype, "Stable Diffusion 1.5")
        return cls(parts, config or cls.Config(), dev, dtype)

    def view_dependent_condition(self, prompt: str, negative: str = "") -> ViewDependentTextCondition:
        """Front/side/back embeddings of `prompt`, blended by azimuth with `.at_azimuth(az)` (SPEC 5)."""
        return self.prompts.view_dependent(prompt, negative)

    def predict_noise(self, noisy_latents: Tensor, t: Tensor, condition: Any, guidance_scale: float) -> Tensor:
        """noisy_latents [B, 4, h, w], t [B] -> CFG epsilon [B, 4, h, w] (float32); one batched UNet call."""
        cond = check_text_condition(condition, "StableDiffusionPrior")
        c, u = cond.batched(noisy_latents.shape[0])
        eps = self._unet_eps(torch.cat([noisy_latents] * 2), torch.cat([t, t]), torch.cat([u, c]))
        return cfg_combine(eps, guidance_scale)
