"""ControlNet v1.1 Tile on its SD1.5 base: the image-control prior of the refinement stage (SPEC 1 step 3, 5).

The UNet sees the refinement prompt with the learned textual-inversion token ("a <token> is dancing"); the
ControlNet sees "best quality, high resolution" and the control image (the same view rendered by the frozen
coarse model). In the unconditional branch both networks see the negative prompt; the control image is
given to both branches, so CFG contrasts text only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..weight_files import check_safetensors
from .base import PriorKind, cfg_combine
from .latent import LatentComponents, TextLatentPrior, load_sd15
from .loading import (
    choose_device_dtype,
    class_name,
    freeze,
    require_component,
    require_files,
    require_folder,
)
from .text import TextCondition


@dataclass
class ControlCondition:
    """UNet text, ControlNet text and the control images of one step."""

    text: TextCondition  # UNet prompt (with the token) and negative prompt
    control_text: TextCondition  # ControlNet prompt ("best quality, high resolution") and negative prompt
    image: Tensor  # [B, 3, S, S] control images in [0, 1] at the prior's image size


def _load_controlnet(path: Path, config_dir: Path | None, device: torch.device, dtype: torch.dtype) -> Any:
    from diffusers import ControlNetModel

    if path.is_file() or path.suffix == ".safetensors":
        if not path.is_file():
            raise FileNotFoundError(f"ControlNet checkpoint {path} does not exist.")
        if path.suffix != ".safetensors":
            raise ValueError(f"{path}: single-file ControlNets must be .safetensors (pickles are not loaded).")
        _check_controlnet_keys(path)
        if config_dir is None:
            raise ValueError(
                f"Loading the single file {path} offline needs controlnet_config_dir: a folder with the ControlNet "
                f"repo's config.json (e.g. lllyasviel/control_v11f1e_sd15_tile without weights)."
            )
        require_files(config_dir, ["config.json"], "ControlNet config folder")
        # diffusers 0.42.1: from_single_file(original_config=...) raises a TypeError; config=<dir> works.
        net = ControlNetModel.from_single_file(str(path), config=str(config_dir), local_files_only=True)
    else:
        root = require_folder(path, "ControlNet")
        if (root / "model_index.json").is_file():
            raise ValueError(
                f"{root} is a full pipeline ({class_name(root / 'model_index.json')}), not a ControlNet; give the "
                f"ControlNet folder (config.json with _class_name ControlNetModel) and pass this one as the base."
            )
        variant = require_component(root.parent, root.name)
        if class_name(root / "config.json") != "ControlNetModel":
            raise ValueError(
                f"{root}/config.json declares {class_name(root / 'config.json')!r}, not a ControlNetModel."
            )
        net = ControlNetModel.from_pretrained(root, variant=variant, local_files_only=True)
    return freeze(net, device, dtype)


def _check_controlnet_keys(path: Path) -> None:
    keys = [k for k in check_safetensors(path) if k != "__metadata__"]
    markers = ("input_hint_block.", "control_model.", "controlnet_cond_embedding.")
    if not any(any(m in k for m in markers) for k in keys):
        raise ValueError(
            f"{path} is not a ControlNet checkpoint (no input_hint_block / controlnet_cond_embedding keys)."
        )


class ControlNetTilePrior(TextLatentPrior):
    """SD1.5 + ControlNet-Tile epsilon prior at 1024 px (SPEC 5; 512 as the cheaper option)."""

    kind = PriorKind.IMAGE_CONTROL

    @dataclass
    class Config:
        #: Default scoring size (a guidance term may set its own); None = twice the base model's native size (1024
        #: for SD1.5, SPEC 5).
        image_size: int | None = None
        #: Scale of the ControlNet residuals added to the UNet.
        conditioning_scale: float = 1.0

    def __init__(
        self,
        parts: LatentComponents,
        controlnet: Any,
        config: ControlNetTilePrior.Config,
        device: torch.device,
        dtype: torch.dtype,
    ):
        super().__init__(parts, 0, device, dtype)
        self.controlnet = freeze(controlnet, device, dtype)
        self.cfg = config
        self.image_size = config.image_size or 2 * self._native_size(parts.unet_config)
        for key in ("cross_attention_dim", "block_out_channels"):
            a, b = controlnet.config.get(key), parts.unet_config.get(key)
            if (
                a is not None
                and b is not None
                and list(a if isinstance(a, (list, tuple)) else [a])
                != list(b if isinstance(b, (list, tuple)) else [b])
            ):
                raise ValueError(f"ControlNet {key}={a} does not match the base UNet's {b}: not an SD1.5 ControlNet?")

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        base_path: str | Path,
        config: ControlNetTilePrior.Config | None = None,
        device: torch.device | str | None = None,
        base_config_dir: str | Path | None = None,
        controlnet_config_dir: str | Path | None = None,
    ) -> ControlNetTilePrior:
        """A ControlNet (folder, or .safetensors + controlnet_config_dir) on an SD1.5 base.

        The base is a diffusers folder, or a single .safetensors file + base_config_dir. Local files only.
        """
        dev, dtype = choose_device_dtype(device)
        net = _load_controlnet(Path(path), Path(controlnet_config_dir) if controlnet_config_dir else None, dev, dtype)
        parts = load_sd15(base_path, base_config_dir, dev, dtype, "ControlNet-Tile base (SD1.5)")
        return cls(parts, net, config or cls.Config(), dev, dtype)

    def control_condition(
        self, text: TextCondition, control_images: Tensor, controlnet_prompt: str = "best quality, high resolution"
    ) -> ControlCondition:
        """control_images [B, 3, S, S] in [0, 1] at the size the term scores (it resizes them) + the cached
        ControlNet prompt embedding."""
        if control_images.dim() != 4 or control_images.shape[1] != 3:
            raise ValueError(f"Control images must be [B, 3, H, W] in [0, 1], got {tuple(control_images.shape)}.")
        img = control_images.detach().float().to(self.device)
        control_text = TextCondition(cond=self.prompts(controlnet_prompt), uncond=text.uncond)
        return ControlCondition(text=text, control_text=control_text, image=img.clamp(0, 1))

    def predict_noise(self, noisy_latents: Tensor, t: Tensor, condition: Any, guidance_scale: float) -> Tensor:
        """noisy_latents [B, 4, h, w], t [B] -> CFG epsilon (float32); ControlNet + UNet, branches batched."""
        if not isinstance(condition, ControlCondition):
            raise TypeError(
                "ControlNetTilePrior needs a ControlCondition from control_condition(), "
                f"got {type(condition).__name__}."
            )
        b = noisy_latents.shape[0]
        c, u = condition.text.batched(b)
        cc, cu = condition.control_text.batched(b)
        image = condition.image
        if image.shape[0] not in (1, b):
            raise ValueError(f"{image.shape[0]} control images for a batch of {b} latents.")
        image = image.expand(b, -1, -1, -1)
        x = torch.cat([noisy_latents] * 2).to(self.device, self.dtype)
        tt = torch.cat([t, t]).to(self.device)
        with torch.no_grad():
            down, mid = self.controlnet(
                x,
                tt,
                encoder_hidden_states=torch.cat([cu, cc]).to(self.dtype),
                controlnet_cond=torch.cat([image, image]).to(self.dtype),
                conditioning_scale=self.cfg.conditioning_scale,
                return_dict=False,
            )
        eps = self._unet_eps(
            x, tt, torch.cat([u, c]), down_block_additional_residuals=down, mid_block_additional_residual=mid
        )
        return cfg_combine(eps, guidance_scale)

    def to(self, device: torch.device | str) -> ControlNetTilePrior:
        super().to(device)
        self.controlnet.to(device=self.device, dtype=self.dtype)
        return self
