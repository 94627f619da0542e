"""Zero123-XL: the image-pose prior (SPEC 2, 5).

The UNet sees 8 channels: the noisy latent and the reference image's raw (unscaled) VAE latent. Its
cross-attention input is Linear(772 -> 768)([CLIP image embedding, pose]) with pose
[rad(d_polar), sin(rad(d_az)), cos(rad(d_az)), d_radius]. With our det +1 cameras and azimuth growing toward
the camera's right, d_az = azimuth - reference azimuth (no sign flip; SPEC 2). The unconditional branch
zeroes both the projected embedding and the concatenated latent (threestudio / the reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..compat import transformers_dtype_kwargs
from .base import NoiseSchedule, Prior, PriorKind, cfg_combine
from .loading import (
    DIFFUSERS_WEIGHTS,
    TRANSFORMERS_WEIGHTS,
    check_unet,
    choose_device_dtype,
    freeze,
    load_schedule,
    load_state_file,
    native_image_size,
    read_json,
    reject_controlnet_folder,
    require_component,
    require_folder,
    vae_encode,
)
from .text import radians

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
#: Both published diffusers layouts of the 772 -> 768 projection: (folder, weight-key prefix).
PROJECTION_LAYOUTS = (("cc_projection", "projection"), ("clip_camera_projection", "proj"))


@dataclass
class Zero123Reference:
    """What Zero123 needs of the reference image, computed once."""

    clip_embedding: Tensor  # [1, 1, D] CLIP image embedding (projected, 768 for ViT-L/14)
    latent: Tensor  # [1, 4, h, w] unscaled VAE latent of the reference at the prior's size


@dataclass
class Zero123Condition:
    """Per-view conditioning: projected embedding and reference latent, plus the pose for diagnostics."""

    embedding: Tensor  # [B, 1, D] cc_projection([clip, pose])
    latent: Tensor  # [1, 4, h, w] reference latent (expanded to B in predict_noise)
    pose: Tensor  # [B, 4] [rad(d_polar), sin(d_az), cos(d_az), d_r]


def pose_embedding(
    polar_deg: Tensor,
    azimuth_deg: Tensor,
    radius_delta: Tensor | None = None,
    reference_polar: float = 90.0,
    reference_azimuth: float = 0.0,
) -> Tensor:
    """[B] angles in degrees -> [B, 4] Zero123 pose (reference view -> [0, 0, 1, 0]; 90 deg right -> [0, 1, 0, 0])."""
    polar = torch.as_tensor(polar_deg, dtype=torch.float32).reshape(-1)
    azimuth = torch.as_tensor(azimuth_deg, dtype=torch.float32).reshape(-1).to(polar.device)
    if polar.shape != azimuth.shape:
        raise ValueError(
            f"polar_deg {tuple(polar.shape)} and azimuth_deg {tuple(azimuth.shape)} must have the same size."
        )
    d_polar = radians(polar - reference_polar)
    d_az = radians(azimuth - reference_azimuth)
    d_r = (
        torch.zeros_like(polar)
        if radius_delta is None
        else torch.as_tensor(radius_delta).float().reshape(-1).to(polar)
    )
    return torch.stack([d_polar, torch.sin(d_az), torch.cos(d_az), d_r], dim=-1)


class Zero123Prior(Prior):
    """Zero123(-XL) epsilon prior over latents [B, 4, 32, 32] of 256 px renders."""

    kind = PriorKind.IMAGE_POSE

    @dataclass
    class Config:
        #: Render size; None = the model's native size (UNet sample_size x 8 = 256 for Zero123-XL).
        image_size: int | None = None

    def __init__(
        self,
        unet: Any,
        vae: Any,
        image_encoder: Any,
        projection: torch.nn.Linear,
        schedule: NoiseSchedule,
        config: Zero123Prior.Config,
        device: torch.device,
        dtype: torch.dtype,
        clip_mean_std: tuple[list[float], list[float]] = (CLIP_MEAN, CLIP_STD),
    ):
        """Wrap already-built networks (frozen here); `from_pretrained` is the loading entry point."""
        out_dim, in_dim = projection.weight.shape
        clip_dim = image_encoder.config.projection_dim
        attn_dim = unet.config.cross_attention_dim
        if unet.config.in_channels != 8:
            raise ValueError(
                f"Zero123 needs an 8-channel UNet (latent + reference latent), got {unet.config.in_channels}."
            )
        if in_dim != clip_dim + 4 or out_dim != attn_dim:
            raise ValueError(
                f"Camera projection is {in_dim} -> {out_dim}, but the CLIP embedding is {clip_dim}-d and the UNet "
                f"attends to {attn_dim}-d (expected {clip_dim + 4} -> {attn_dim}): components from different models."
            )
        self.cfg = config
        self.device, self.dtype = device, dtype
        self.tokenizer = None  # image-conditioned: no text stack
        self.text_encoder = None
        self.unet = freeze(unet, device, dtype)
        self.vae = freeze(vae, device, dtype)
        self.image_encoder = freeze(image_encoder, device, dtype)
        self.projection = freeze(projection, device, dtype)
        self.schedule = schedule
        self.image_size = config.image_size or native_image_size(dict(unet.config), vae)
        self._clip_mean = torch.tensor(clip_mean_std[0]).view(1, 3, 1, 1)
        self._clip_std = torch.tensor(clip_mean_std[1]).view(1, 3, 1, 1)

    @staticmethod
    def _load_projection(root: Path) -> tuple[Tensor, Tensor]:
        """Linear(772 -> 768) weights from either published layout."""
        for folder, prefix in PROJECTION_LAYOUTS:
            if (root / folder).is_dir():
                require_component(root, folder)
                file = next(root / folder / w for w in DIFFUSERS_WEIGHTS if (root / folder / w).is_file())
                state = load_state_file(file)
                keys = (f"{prefix}.weight", f"{prefix}.bias")
                if not all(k in state for k in keys):
                    raise ValueError(f"{file}: expected keys {keys}, found {sorted(state)[:6]}.")
                return state[keys[0]].float(), state[keys[1]].float()
        raise FileNotFoundError(
            f"No camera projection in {root}: expected cc_projection/ (keys projection.*) or "
            f"clip_camera_projection/ (keys proj.*), each with config.json + diffusion_pytorch_model.safetensors."
        )

    @classmethod
    def from_pretrained(
        cls, path: str | Path, config: Zero123Prior.Config | None = None, device: torch.device | str | None = None
    ) -> Zero123Prior:
        """Load a Zero123 diffusers folder (unet/, vae/, image_encoder/, cc_projection/ or clip_camera_projection/)."""
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPVisionModelWithProjection

        root = require_folder(Path(path), "Zero123")
        reject_controlnet_folder(root, "Zero123")
        dev, dtype = choose_device_dtype(device)
        unet_variant = require_component(root, "unet")
        check_unet(root, "UNet2DConditionModel", 8, "Zero123Prior")  # wrong kind of model: say so first
        vae_variant = require_component(root, "vae")
        clip_variant = require_component(root, "image_encoder", TRANSFORMERS_WEIGHTS)
        weight, bias = cls._load_projection(root)
        projection = torch.nn.Linear(weight.shape[1], weight.shape[0])
        projection.load_state_dict({"weight": weight, "bias": bias})
        pre = root / "feature_extractor" / "preprocessor_config.json"
        proc = read_json(pre) if pre.is_file() else {}
        kw = {"local_files_only": True, "torch_dtype": dtype}
        return cls(
            unet=UNet2DConditionModel.from_pretrained(root / "unet", variant=unet_variant, **kw),
            vae=AutoencoderKL.from_pretrained(root / "vae", variant=vae_variant, **kw),
            image_encoder=CLIPVisionModelWithProjection.from_pretrained(
                root / "image_encoder", variant=clip_variant, local_files_only=True, **transformers_dtype_kwargs(dtype)
            ),
            projection=projection,
            schedule=load_schedule(root),
            config=config or cls.Config(),
            device=dev,
            dtype=dtype,
            clip_mean_std=(proc.get("image_mean", CLIP_MEAN), proc.get("image_std", CLIP_STD)),
        )

    def encode_images(self, images: Tensor) -> Tensor:
        """images [B, 3, H, W] in [0, 1] -> scaled latents [B, 4, h, w] (float32, differentiable)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"Expected images [B, 3, H, W], got {tuple(images.shape)}.")
        return vae_encode(self.vae, images)

    def reference_condition(self, image: Tensor) -> Zero123Reference:
        """image [1, 3, H, W] in [0, 1] (square, object centred) -> CLIP embedding + unscaled latent, once."""
        if image.dim() != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"Reference image must be [1, 3, H, W] in [0, 1], got {tuple(image.shape)}.")
        encoder = next(self.image_encoder.parameters())  # on the CPU after offload_encoders()
        with torch.no_grad():
            clip_size = self.image_encoder.config.image_size
            x = image.to(encoder.device).float()
            x = torch.nn.functional.interpolate(x, size=(clip_size, clip_size), mode="bicubic", antialias=True)
            x = (x.clamp(0, 1) - self._clip_mean.to(x)) / self._clip_std.to(x)
            emb = self.image_encoder(pixel_values=x.to(encoder.dtype)).image_embeds.float().to(self.device)
            image = image.to(self.device).float()
            ref = torch.nn.functional.interpolate(image, size=(self.image_size,) * 2, mode="bilinear", antialias=True)
            latent = vae_encode(self.vae, ref, scaled=False)
        return Zero123Reference(clip_embedding=emb[:, None, :], latent=latent)

    def pose_condition(self, reference: Zero123Reference, pose: Tensor) -> Zero123Condition:
        """Condition for B views from their relative poses [B, 4] (`pose_embedding`: [rad(d_polar), sin(d_az),
        cos(d_az), d_radius]); the guidance term builds the pose from its cameras, the prior only embeds it."""
        pose = torch.as_tensor(pose, dtype=torch.float32).to(self.device)
        if pose.dim() != 2 or pose.shape[-1] != 4:
            raise ValueError(f"pose must be [B, 4] (see pose_embedding), got {tuple(pose.shape)}.")
        clip = reference.clip_embedding.to(self.device).expand(pose.shape[0], 1, -1)
        with torch.no_grad():
            emb = self.projection(torch.cat([clip, pose[:, None, :]], dim=-1).to(self.dtype))
        return Zero123Condition(embedding=emb, latent=reference.latent.to(self.device), pose=pose)

    def predict_noise(self, noisy_latents: Tensor, t: Tensor, condition: Any, guidance_scale: float) -> Tensor:
        """noisy_latents [B, 4, h, w], t [B] -> CFG epsilon (float32); uncond = zero embedding + zero concat."""
        if not isinstance(condition, Zero123Condition):
            raise TypeError(
                f"Zero123Prior needs a Zero123Condition from pose_condition(), got {type(condition).__name__}."
            )
        b = noisy_latents.shape[0]
        emb = condition.embedding
        if emb.shape[0] not in (1, b):
            raise ValueError(f"Condition has {emb.shape[0]} poses but the batch has {b} latents.")
        emb = emb.expand(b, -1, -1)
        ref = condition.latent.expand(b, -1, -1, -1)
        if ref.shape[-2:] != noisy_latents.shape[-2:]:
            raise ValueError(
                f"Reference latent {tuple(ref.shape)} and noisy latents {tuple(noisy_latents.shape)} differ."
            )
        x = torch.cat([torch.cat([noisy_latents] * 2), torch.cat([torch.zeros_like(ref), ref])], dim=1)
        e = torch.cat([torch.zeros_like(emb), emb])
        with torch.no_grad():
            eps = self.unet(
                x.to(self.device, self.dtype),
                torch.cat([t, t]).to(self.device),
                encoder_hidden_states=e.to(self.dtype),
            )
        return cfg_combine(eps.sample.float(), guidance_scale)

    def offload_encoders(self) -> None:
        self.image_encoder.to(device="cpu", dtype=torch.float32)

    def to(self, device: torch.device | str) -> Zero123Prior:
        """Move all networks; dtype follows the device (fp16 on CUDA)."""
        self.device, self.dtype = choose_device_dtype(device)
        for net in (self.unet, self.vae, self.image_encoder, self.projection):
            net.to(device=self.device, dtype=self.dtype)
        return self
