"""MVDream's network, written as diffusers modules from the original config's terms (bytedance/MVDream, MIT).

MVDream is the SD UNet with two changes (`MultiViewUNetModel`): a camera MLP, Linear(16 -> 4C), SiLU,
Linear(4C -> 4C), whose output is added to the timestep embedding (diffusers' "projection" class embedding has
exactly this shape and is added at the same place), and self-attention taken jointly over the views of one object
(`(b f) l c -> b (f l) c` before `attn1`, back after; `MultiViewAttnProcessor`). Cross-attention, ResBlocks and the
timestep embedding ([cos, sin] order) are SD's. The VAE and text towers are SD's too: SD2.1's OpenCLIP ViT-H read
at its penultimate layer (diffusers keeps the first 23 of 24 blocks plus the final norm), or SD1.5's CLIP ViT-L.

`MVDreamArchitecture` holds a config in the original terms (`configs/mvdream_sd21.json`, `mvdream_sd15.json`, or
a tiny one); the functions below turn it into diffusers / transformers configs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import NoiseSchedule
from .loading import read_json

CONFIG_DIR = Path(__file__).parent / "configs"
#: The released checkpoints' architectures by their text tower's layout in the file.
PRESETS = {"open_clip": "mvdream_sd21.json", "clip": "mvdream_sd15.json"}


@dataclass(frozen=True)
class MVDreamArchitecture:
    """An MVDream model in the original config's terms (see configs/mvdream_sd21.json)."""

    unet: dict[str, Any]
    """MultiViewUNetModel params: model_channels, channel_mult, num_res_blocks, attention_resolutions, num_heads or
    num_head_channels, context_dim, camera_dim, use_linear_in_transformer, image_size (latent side); norm_groups
    (not in the original, which hard-codes 32) lets tiny test models use fewer channels."""
    vae: dict[str, Any]
    """The first stage's ddconfig: ch, ch_mult, num_res_blocks, z_channels, in_channels, out_ch (+ norm_groups)."""
    text_encoder: dict[str, Any]
    """layout ("open_clip" | "clip"), layer ("penultimate" | "last"), width, layers, heads, mlp_width, embed_dim,
    vocab_size, context_length."""
    scale_factor: float = 0.18215
    """VAE latent scale."""
    linear_start: float = 0.00085
    """First beta of the scaled-linear DDPM schedule."""
    linear_end: float = 0.012
    """Last beta."""
    timesteps: int = 1000
    """Training timesteps."""
    num_views: int = 4
    """Views attended jointly (MVDream was trained on 4)."""

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> MVDreamArchitecture:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in cfg.items() if k in names})

    @classmethod
    def from_json(cls, path: str | Path) -> MVDreamArchitecture:
        return cls.from_dict(read_json(Path(path)))

    @classmethod
    def preset(cls, layout: str) -> MVDreamArchitecture:
        """The released model whose text tower has `layout` ("open_clip": sd-v2.1-base-4view, "clip": sd-v1.5)."""
        return cls.from_json(CONFIG_DIR / PRESETS[layout])

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def unet_config(arch: MVDreamArchitecture) -> dict[str, Any]:
    """UNet2DConditionModel kwargs equal to the original MultiViewUNetModel (legacy=False)."""
    u = arch.unet
    mult = list(u["channel_mult"])
    channels = [u["model_channels"] * m for m in mult]
    attn = [2**level in u["attention_resolutions"] for level in range(len(mult))]
    if u.get("num_head_channels", -1) not in (-1, None):  # diffusers' attention_head_dim is the number of heads
        heads: Any = [c // u["num_head_channels"] for c in channels]
    else:
        heads = u["num_heads"]
    return {
        "sample_size": u.get("image_size", 32),
        "in_channels": u.get("in_channels", 4),
        "out_channels": u.get("out_channels", 4),
        "block_out_channels": channels,
        "layers_per_block": u["num_res_blocks"],
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)],
        "attention_head_dim": heads,
        "cross_attention_dim": u["context_dim"],
        "use_linear_projection": bool(u.get("use_linear_in_transformer", False)),
        "transformer_layers_per_block": u.get("transformer_depth", 1),
        "norm_num_groups": u.get("norm_groups", 32),
        "class_embed_type": "projection",
        "projection_class_embeddings_input_dim": u["camera_dim"],
    }


def vae_config(arch: MVDreamArchitecture) -> dict[str, Any]:
    """AutoencoderKL kwargs of the first stage."""
    v = arch.vae
    n = len(v["ch_mult"])
    return {
        "in_channels": v.get("in_channels", 3),
        "out_channels": v.get("out_ch", 3),
        "block_out_channels": [v["ch"] * m for m in v["ch_mult"]],
        "down_block_types": ["DownEncoderBlock2D"] * n,
        "up_block_types": ["UpDecoderBlock2D"] * n,
        "layers_per_block": v["num_res_blocks"],
        "latent_channels": v.get("z_channels", 4),
        "norm_num_groups": v.get("norm_groups", 32),
        "sample_size": 8 * arch.unet.get("image_size", 32),
        "scaling_factor": arch.scale_factor,
    }


def text_config(arch: MVDreamArchitecture, tokenizer: Any) -> dict[str, Any]:
    """CLIPTextConfig kwargs; an OpenCLIP tower read at its penultimate layer keeps all blocks but the last."""
    t = arch.text_encoder
    open_clip = t["layout"] == "open_clip"
    layers = t["layers"] - (1 if t.get("layer") == "penultimate" else 0)
    return {
        "vocab_size": t["vocab_size"],
        "hidden_size": t["width"],
        "intermediate_size": t["mlp_width"],
        "num_hidden_layers": layers,
        "num_attention_heads": t["heads"],
        "max_position_embeddings": t["context_length"],
        "projection_dim": t.get("embed_dim", t["width"]),
        "hidden_act": "gelu" if open_clip else "quick_gelu",
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def noise_schedule(arch: MVDreamArchitecture) -> NoiseSchedule:
    """LDM's "linear" schedule: betas = linspace(sqrt(start), sqrt(end), T)^2 (diffusers' scaled_linear)."""
    betas = torch.linspace(arch.linear_start**0.5, arch.linear_end**0.5, arch.timesteps, dtype=torch.float64) ** 2
    return NoiseSchedule(alphas_cumprod=torch.cumprod(1.0 - betas, 0).float())


def build_networks(
    arch: MVDreamArchitecture,
    tokenizer: Any = None,
    empty: bool = False,
    parts: tuple[str, ...] = ("unet", "vae", "text_encoder"),
) -> dict[str, torch.nn.Module]:
    """The UNet (with the multi-view processor), VAE and text encoder of `arch` (those in `parts`), fp32 on the CPU.

    empty: parameters on the meta device (buffers real), to be filled by `load_state_dict(..., assign=True)`.
    tokenizer: gives the text encoder its special token ids.
    """
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    def make() -> dict[str, torch.nn.Module]:
        nets: dict[str, torch.nn.Module] = {}
        if "unet" in parts:
            nets["unet"] = UNet2DConditionModel(**unet_config(arch))
            nets["unet"].set_attn_processor(MultiViewAttnProcessor())
        if "vae" in parts:
            nets["vae"] = AutoencoderKL(**vae_config(arch))
        if "text_encoder" in parts:
            nets["text_encoder"] = CLIPTextModel(CLIPTextConfig(**text_config(arch, tokenizer)))
        return nets

    if not empty:
        return make()
    with init_empty_weights():
        return make()


class MultiViewAttnProcessor:
    """Attention of MVDream's transformer blocks: self-attention over the tokens of all `num_views` views of an
    object at once ([(b f), l, c] -> [b, (f l), c]: view-major, the original's rearrange), cross-attention per view.

    `num_views` arrives per call through the UNet's `cross_attention_kwargs`; 1 gives plain per-image attention.
    """

    def __call__(
        self,
        attn: Any,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None = None,
        attention_mask: Tensor | None = None,
        temb: Tensor | None = None,
        num_views: int = 1,
    ) -> Tensor:
        if attention_mask is not None:
            raise ValueError("MVDream's attention takes no mask.")
        joint = encoder_hidden_states is None and num_views > 1
        shape = hidden_states.shape  # [(b f), l, c]
        if joint:
            if shape[0] % num_views:
                raise ValueError(f"A batch of {shape[0]} latents does not split into groups of {num_views} views.")
            hidden_states = hidden_states.reshape(shape[0] // num_views, num_views * shape[1], shape[2])
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        b, heads = hidden_states.shape[0], attn.heads
        q, k, v = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        q, k, v = (x.reshape(b, -1, heads, x.shape[-1] // heads).transpose(1, 2) for x in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, scale=attn.scale)
        out = attn.to_out[1](attn.to_out[0](out.transpose(1, 2).reshape(b, -1, q.shape[1] * q.shape[-1])))
        return out.reshape(shape) if joint else out
