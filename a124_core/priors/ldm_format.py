"""Diffusers <-> original (LDM / A1111 / MVDream) state-dict layouts of Stable Diffusion 1.x / 2.x components.

Written as key maps over the diffusers model's own keys, generic over the UNet/VAE configs, so one map serves both
directions: tiny test models are saved in a real single-file layout (`model.diffusion_model.*`,
`first_stage_model.*`, `cond_stage_model.transformer.text_model.*` for CLIP, `cond_stage_model.model.*` for
OpenCLIP) and original checkpoints (MVDream's `.pt`) are read back without diffusers' private converters. Tests pin
the maps against diffusers' own single-file converters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer.text_model."
OPEN_CLIP_PREFIX = "cond_stage_model.model."

_UNET_RESNET = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)
UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
#: MVDream's camera MLP is diffusers' "projection" class embedding (Linear 16 -> 4C, SiLU, Linear 4C -> 4C).
CAMERA_EMBED = {"class_embedding.linear_1": "camera_embed.0", "class_embedding.linear_2": "camera_embed.2"}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
#: CLIPTextModel (without its `text_model.` prefix) -> OpenCLIP text tower; q/k/v are merged into in_proj.
_OPEN_CLIP_TOP = {
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "final_layer_norm.weight": "ln_final.weight",
    "final_layer_norm.bias": "ln_final.bias",
}
_OPEN_CLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "self_attn.out_proj": "attn.out_proj",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}


def _resnet(rest: str) -> str:
    for new, old in _UNET_RESNET:
        if rest.startswith(new + "."):
            return old + rest[len(new) :]
    return rest


def unet_ldm_keys(keys: Iterable[str], layers_per_block: int, top: Mapping[str, str] = UNET_TOP) -> dict[str, str]:
    """UNet2DConditionModel keys -> LDM keys (without `model.diffusion_model.`).

    Down block b, layer l lives at input_blocks[1 + b (L + 1) + l] (0: resnet, 1: attention); its
    downsampler at input_blocks[(b + 1)(L + 1)].0.op. Up block b, layer l at output_blocks[b (L + 1) + l];
    the upsampler follows the last layer (index 2 after an attention, else 1). `top` maps whole modules
    (add `CAMERA_EMBED` for MVDream).
    """
    keys = list(keys)
    per = layers_per_block + 1
    up_has_attn = {int(m.group(1)) for k in keys if (m := re.match(r"up_blocks\.(\d+)\.attentions\.", k))}
    out: dict[str, str] = {}
    for key in keys:
        module, _, param = key.rpartition(".")
        if module in top:
            new = f"{top[module]}.{param}"
        elif m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
            b, kind, j, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
            idx = 1 + b * per + j
            new = f"input_blocks.{idx}.0.{_resnet(rest)}" if kind == "resnets" else f"input_blocks.{idx}.1.{rest}"
        elif m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
            new = f"input_blocks.{(int(m.group(1)) + 1) * per}.0.op.{m.group(2)}"
        elif m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
            new = f"middle_block.{2 * int(m.group(1))}.{_resnet(m.group(2))}"
        elif m := re.match(r"mid_block\.attentions\.0\.(.*)", key):
            new = f"middle_block.1.{m.group(1)}"
        elif m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
            b, kind, j, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
            idx = b * per + j
            new = f"output_blocks.{idx}.0.{_resnet(rest)}" if kind == "resnets" else f"output_blocks.{idx}.1.{rest}"
        elif m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
            b = int(m.group(1))
            new = f"output_blocks.{b * per + layers_per_block}.{2 if b in up_has_attn else 1}.conv.{m.group(2)}"
        else:
            raise ValueError(f"UNet key {key!r} has no SD single-file equivalent (unsupported UNet layout).")
        out[key] = new
    return out


def unet_to_ldm(
    state: dict[str, Tensor], layers_per_block: int, top: Mapping[str, str] = UNET_TOP
) -> dict[str, Tensor]:
    """UNet2DConditionModel state dict -> `model.diffusion_model.*` keys (SD 1.x / 2.x layout)."""
    keys = unet_ldm_keys(state, layers_per_block, top)
    return {UNET_PREFIX + keys[k]: v for k, v in state.items()}


def vae_ldm_keys(keys: Iterable[str], num_blocks: int) -> dict[str, str]:
    """AutoencoderKL keys -> LDM keys (without `first_stage_model.`)."""
    out: dict[str, str] = {}
    for key in keys:
        new = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
        if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", new):
            new = f"encoder.down.{m.group(1)}.block.{m.group(2)}.{m.group(3)}"
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", new):
            new = f"encoder.down.{m.group(1)}.downsample.conv.{m.group(2)}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", new):
            new = f"decoder.up.{num_blocks - 1 - int(m.group(1))}.block.{m.group(2)}.{m.group(3)}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", new):
            new = f"decoder.up.{num_blocks - 1 - int(m.group(1))}.upsample.conv.{m.group(2)}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", new):
            new = f"{m.group(1)}.mid.block_{int(m.group(2)) + 1}.{m.group(3)}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)\.(weight|bias)", new):
            new = f"{m.group(1)}.mid.attn_1.{_VAE_ATTN[m.group(2)]}.{m.group(3)}"
        out[key] = new
    return out


def vae_to_ldm(state: dict[str, Tensor], num_blocks: int) -> dict[str, Tensor]:
    """AutoencoderKL state dict -> `first_stage_model.*` keys; attention projections become 1x1 convs."""
    out: dict[str, Tensor] = {}
    for key, new in vae_ldm_keys(state, num_blocks).items():
        value = state[key]
        out[VAE_PREFIX + new] = value[:, :, None, None] if ".attn_1." in new and value.dim() == 2 else value
    return out


def text_encoder_to_ldm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """CLIPTextModel state dict (transformers 4 or 5 naming) -> `cond_stage_model.transformer.text_model.*`."""
    return {CLIP_PREFIX + k.removeprefix("text_model."): v for k, v in state.items()}


def open_clip_key(key: str) -> str:
    """A CLIPTextModel key (either naming) -> its OpenCLIP key; q/k/v projections name the shared `in_proj_*`."""
    key = key.removeprefix("text_model.")
    if key in _OPEN_CLIP_TOP:
        return _OPEN_CLIP_TOP[key]
    m = re.match(r"encoder\.layers\.(\d+)\.(.*)\.(weight|bias)$", key)
    if m is None:
        raise ValueError(f"Text-encoder key {key!r} has no OpenCLIP equivalent.")
    layer, module, param = m.groups()
    if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
        return f"transformer.resblocks.{layer}.attn.in_proj_{param}"
    return f"transformer.resblocks.{layer}.{_OPEN_CLIP_LAYER[module]}.{param}"


def text_encoder_to_open_clip(state: dict[str, Tensor], projection_dim: int) -> dict[str, Tensor]:
    """CLIPTextModel state dict -> `cond_stage_model.model.*` (OpenCLIP, SD2's text tower), q/k/v merged.

    Adds the tower's `text_projection` [D, projection_dim] and `logit_scale`, which SD2 and MVDream keep in their
    files but never use (random here).
    """
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if "self_attn.q_proj" in key:
            merged = [state[key.replace("q_proj", p)] for p in ("q_proj", "k_proj", "v_proj")]
            out[OPEN_CLIP_PREFIX + open_clip_key(key)] = torch.cat(merged)
        elif not re.search(r"self_attn\.[kv]_proj", key):
            out[OPEN_CLIP_PREFIX + open_clip_key(key)] = value
    width = out[OPEN_CLIP_PREFIX + "token_embedding.weight"].shape[1]
    out[OPEN_CLIP_PREFIX + "text_projection"] = torch.randn(width, projection_dim) * width**-0.5
    out[OPEN_CLIP_PREFIX + "logit_scale"] = torch.tensor(4.6052)
    return out


def ldm_key_map(model_keys: Iterable[str], prefix: str, mapping: Mapping[str, str]) -> dict[str, str]:
    """Model key -> full original key, for `from_original`."""
    return {k: prefix + mapping[k] for k in model_keys}


def from_original(
    source: Mapping[str, Tensor], key_map: Mapping[str, str], shapes: Mapping[str, torch.Size]
) -> tuple[dict[str, Tensor], list[str], set[str]]:
    """Read a model's tensors out of an original-layout state dict: the inverse of the maps above.

    key_map: model key -> original key (several model keys may share one original key: q/k/v of an OpenCLIP
    `in_proj_*`, split in that order along dim 0). Tensors are reshaped to the model's shapes (1x1 convs -> linear).

    Returns (state, missing model keys, original keys used).
    """
    groups: dict[str, list[str]] = {}
    for model_key, original in key_map.items():
        groups.setdefault(original, []).append(model_key)
    state: dict[str, Tensor] = {}
    missing: list[str] = []
    for original, model_keys in groups.items():
        if original not in source:
            missing += model_keys
            continue
        value = source[original]
        parts = value.chunk(len(model_keys)) if len(model_keys) > 1 else (value,)
        for model_key, part in zip(sorted(model_keys, key=_qkv_order), parts):
            if part.numel() != shapes[model_key].numel():
                missing.append(f"{model_key} (shape {tuple(part.shape)} in the file, {tuple(shapes[model_key])} here)")
                continue
            state[model_key] = part.reshape(shapes[model_key])
    return state, missing, set(groups)


def _qkv_order(key: str) -> int:
    return next((i for i, p in enumerate(("q_proj", "k_proj", "v_proj")) if p in key), 0)
