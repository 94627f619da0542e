"""MVDream's original state-dict layout: reading the released `.pt` files into our modules; writing it (tiny models).

The released files (`sd-v2.1-base-4view.pt`, `sd-v1.5-4view.pt`) are `LatentDiffusionInterface.state_dict()`:
`model.diffusion_model.*` (the UNet, camera MLP at `camera_embed.0/.2`), `first_stage_model.*` (VAE),
`cond_stage_model.model.*` (OpenCLIP, SD2.1 variant) or `cond_stage_model.transformer.text_model.*` (CLIP, SD1.5
variant), and the DDPM schedule buffers. Every key must be either read or known to be unused (the schedule buffers
other than alphas_cumprod, OpenCLIP's projection / logit scale / last block, CLIP's position ids), so a file of
another layout fails in one line naming it.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import torch
from torch import Tensor

from ..weight_files import check_weight_file
from .base import NoiseSchedule
from .ldm_format import (
    CAMERA_EMBED,
    CLIP_PREFIX,
    OPEN_CLIP_PREFIX,
    UNET_PREFIX,
    UNET_TOP,
    VAE_PREFIX,
    from_original,
    open_clip_key,
    text_encoder_to_ldm,
    text_encoder_to_open_clip,
    unet_ldm_keys,
    unet_to_ldm,
    vae_ldm_keys,
    vae_to_ldm,
)
from .mvdream_arch import MVDreamArchitecture, noise_schedule

#: LatentDiffusionInterface's schedule buffers (saved in the released files, derived from alphas_cumprod).
SCHEDULE_BUFFERS = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)
_CAMERA_KEY = UNET_PREFIX + "camera_embed.0.weight"


def read_state(path: Path) -> dict[str, Tensor]:
    """An original-layout file as a state dict: `.safetensors`, or a `torch.save` file read with
    `torch.load(weights_only=True)` (memory-mapped when it is a zip archive: 5 GB are not copied into RAM)."""
    path = check_weight_file(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    mmap = zipfile.is_zipfile(path)
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of tensors.")
    return state.get("state_dict", state) if isinstance(state.get("state_dict"), dict) else state


def text_layout(state: dict[str, Tensor], path: Path) -> str:
    """Which text tower an MVDream file carries ("open_clip" or "clip"); refuses files that are not MVDream's."""
    if not any(k.startswith(UNET_PREFIX) for k in state):
        raise ValueError(
            f"{path} is not an MVDream checkpoint in the original layout (no {UNET_PREFIX}* keys); expected "
            f"sd-v2.1-base-4view.pt or sd-v1.5-4view.pt from MVDream/MVDream, or a diffusers-layout folder."
        )
    if _CAMERA_KEY not in state:
        raise ValueError(
            f"{path} has no camera embedding ({_CAMERA_KEY}): a plain Stable Diffusion checkpoint, not MVDream; "
            f"load it as the 2D (image-text) prior instead."
        )
    if any(k.startswith(OPEN_CLIP_PREFIX) for k in state):
        return "open_clip"
    if any(k.startswith(CLIP_PREFIX) for k in state):
        return "clip"
    raise ValueError(
        f"{path} has no text encoder ({OPEN_CLIP_PREFIX}* or {CLIP_PREFIX}*): not a released MVDream file."
    )


def _key_map(name: str, net: torch.nn.Module, arch: MVDreamArchitecture) -> dict[str, str]:
    """Module key -> original key of network `name` ("unet", "vae", "text_encoder")."""
    keys = net.state_dict()
    if name == "unet":
        layout = unet_ldm_keys(keys, net.config.layers_per_block, {**UNET_TOP, **CAMERA_EMBED})
        return {k: UNET_PREFIX + v for k, v in layout.items()}
    if name == "vae":
        return {k: VAE_PREFIX + v for k, v in vae_ldm_keys(keys, len(net.config.block_out_channels)).items()}
    if arch.text_encoder["layout"] == "open_clip":
        return {k: OPEN_CLIP_PREFIX + open_clip_key(k) for k in keys}
    return {k: CLIP_PREFIX + k.removeprefix("text_model.") for k in keys}


def _unused(arch: MVDreamArchitecture) -> re.Pattern[str]:
    """Keys the released files hold that no module reads."""
    names = [re.escape(b) for b in SCHEDULE_BUFFERS] + [re.escape(CLIP_PREFIX) + r"embeddings\.position_ids"]
    t = arch.text_encoder
    names.append(re.escape(OPEN_CLIP_PREFIX) + r"(text_projection|logit_scale|attn_mask)")
    if t["layout"] == "open_clip" and t.get("layer") == "penultimate":
        names.append(re.escape(OPEN_CLIP_PREFIX) + rf"transformer\.resblocks\.{t['layers'] - 1}\..*")
    return re.compile("|".join(f"(?:{n})" for n in names))


def load_original(
    nets: dict[str, torch.nn.Module], state: dict[str, Tensor], arch: MVDreamArchitecture, path: Path
) -> NoiseSchedule:
    """Fill `nets` (any of "unet", "vae", "text_encoder" from `build_networks(arch, empty=True)`) from an
    original-layout state dict; returns the schedule.

    Raises one line naming `path` when a module key is missing or has another shape, or the file holds keys no
    module reads.
    """
    loaded, missing, used = {}, [], set()
    for name in nets:
        key_map = _key_map(name, nets[name], arch)
        shapes = {k: v.shape for k, v in nets[name].state_dict().items()}
        loaded[name], lost, seen = from_original(state, key_map, shapes)
        missing += lost
        used |= seen
    unused = _unused(arch)
    unexpected = sorted(k for k in state if k not in used and not unused.fullmatch(k))
    if missing or unexpected:
        raise ValueError(
            f"{path} does not match the MVDream architecture it was read as ({len(missing)} weights missing or of "
            f"another shape, e.g. {missing[:2]}; {len(unexpected)} unexpected keys, e.g. {unexpected[:2]}): pass "
            f"the architecture that wrote it (a JSON like a124_core/priors/configs/mvdream_sd21.json)."
        )
    for name, net in nets.items():
        net.load_state_dict(loaded[name], strict=True, assign=True)
    if "alphas_cumprod" in state and state["alphas_cumprod"].numel() == arch.timesteps:
        return NoiseSchedule(alphas_cumprod=state["alphas_cumprod"].float().clone())
    return noise_schedule(arch)


def to_original(nets: dict[str, torch.nn.Module], arch: MVDreamArchitecture) -> dict[str, Tensor]:
    """The state dict a released MVDream file of `arch` holds for these networks (tiny test models).

    The parts the loader never reads are written too (random: OpenCLIP's projection and last block), so the test
    file has the released files' full key set.
    """
    unet, vae, text = nets["unet"], nets["vae"], nets["text_encoder"]
    state = unet_to_ldm(unet.state_dict(), unet.config.layers_per_block, {**UNET_TOP, **CAMERA_EMBED})
    state.update(vae_to_ldm(vae.state_dict(), len(vae.config.block_out_channels)))
    t = arch.text_encoder
    if t["layout"] == "open_clip":
        text_state = text_encoder_to_open_clip(text.state_dict(), t.get("embed_dim", t["width"]))
        if t.get("layer") == "penultimate":  # the block the penultimate read skips
            last = f"{OPEN_CLIP_PREFIX}transformer.resblocks.{t['layers'] - 2}."
            extra = f"{OPEN_CLIP_PREFIX}transformer.resblocks.{t['layers'] - 1}."
            block = {extra + k[len(last) :]: v for k, v in text_state.items() if k.startswith(last)}
            text_state.update({k: torch.randn_like(v) * 0.02 for k, v in block.items()})
        state.update(text_state)
    else:
        state.update(text_encoder_to_ldm(text.state_dict()))
    state.update(schedule_buffers(noise_schedule(arch).alphas_cumprod))
    return {k: v.detach().contiguous() for k, v in state.items()}


def schedule_buffers(alphas_cumprod: Tensor) -> dict[str, Tensor]:
    """LatentDiffusionInterface.register_schedule's buffers from alphas_cumprod [T] (float32, as it saves them)."""
    a = alphas_cumprod.double()
    prev = torch.cat([torch.ones(1, dtype=a.dtype), a[:-1]])
    betas = 1 - a / prev
    post = betas * (1 - prev) / (1 - a)
    values = (
        betas, a, prev, a.sqrt(), (1 - a).sqrt(), (1 - a).log(), (1 / a).sqrt(), (1 / a - 1).sqrt(), post,
        post.clamp_min(1e-20).log(), betas * prev.sqrt() / (1 - a), (1 - prev) * (1 - betas).sqrt() / (1 - a),
    )  # fmt: skip
    return {name: v.float() for name, v in zip(SCHEDULE_BUFFERS, values)}
