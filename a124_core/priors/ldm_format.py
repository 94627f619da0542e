"""Diffusers -> original (LDM / A1111) state-dict layout for Stable Diffusion 1.x single-file checkpoints.

The inverse of diffusers' `from_single_file` conversion, written generically over the UNet/VAE configs so
that tiny test models can be saved as a real-layout single-file checkpoint (`model.diffusion_model.*`,
`first_stage_model.*`, `cond_stage_model.transformer.text_model.*`) and loaded back through diffusers' own
single-file code. A round-trip test pins it against diffusers' converter.
"""

from __future__ import annotations

import re

from torch import Tensor

_UNET_RESNET = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)
_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _resnet(rest: str) -> str:
    for new, old in _UNET_RESNET:
        if rest.startswith(new + "."):
            return old + rest[len(new) :]
    return rest


def unet_to_ldm(state: dict[str, Tensor], layers_per_block: int) -> dict[str, Tensor]:
    """UNet2DConditionModel state dict -> `model.diffusion_model.*` keys (SD 1.x layout).

    Down block b, layer l lives at input_blocks[1 + b (L + 1) + l] (0: resnet, 1: attention); its
    downsampler at input_blocks[(b + 1)(L + 1)].0.op. Up block b, layer l at output_blocks[b (L + 1) + l];
    the upsampler follows the last layer (index 2 after an attention, else 1).
    """
    per = layers_per_block + 1
    up_has_attn = {int(m.group(1)) for k in state if (m := re.match(r"up_blocks\.(\d+)\.attentions\.", k))}
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if module in _UNET_TOP:
            new = f"{_UNET_TOP[module]}.{param}"
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
            raise ValueError(f"UNet key {key!r} has no SD 1.x single-file equivalent (unsupported UNet layout).")
        out["model.diffusion_model." + new] = value
    return out


def vae_to_ldm(state: dict[str, Tensor], num_blocks: int) -> dict[str, Tensor]:
    """AutoencoderKL state dict -> `first_stage_model.*` keys; attention projections become 1x1 convs."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
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
            if value.dim() == 2:
                value = value[:, :, None, None]
        out["first_stage_model." + new] = value
    return out


def text_encoder_to_ldm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """CLIPTextModel state dict (transformers 4 or 5 naming) -> `cond_stage_model.transformer.text_model.*`."""
    return {"cond_stage_model.transformer.text_model." + k.removeprefix("text_model."): v for k, v in state.items()}
