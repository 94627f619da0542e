"""Tiny random-weight MVDream and SD2.1-base models in the released layouts (tests, smoke runs).

MVDream: the original `.pt` layout (`MVDreamArchitecture` in the original config's terms, written beside the file
as `<name>.json`; the loader reads such a sidecar) for both released variants, SD2.1-base's (OpenCLIP text tower
read at its penultimate block, linear transformer projections, heads of fixed width) and SD1.5's (CLIP, 1x1-conv
projections, a fixed head count); and the diffusers-layout folder of ashawkey/mvdream-sd2.1-diffusers, holding the
same weights as the SD2.1 `.pt`. SD2.1-base: a diffusers folder and a single-file `.safetensors` with the OpenCLIP
tower (`cond_stage_model.model.*`) plus its weightless config folder.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from .ldm_format import UNET_PREFIX, text_encoder_to_open_clip, unet_to_ldm, vae_to_ldm
from .mvdream_arch import MVDreamArchitecture, build_networks
from .mvdream_weights import to_original
from .tiny import SD_COMPONENTS, SD_SCHEDULER, TINY_UNET, TINY_VAE, build_once, model_index, text_stack, write_json
from .tiny_tokenizer import write_clip_tokenizer

#: The tiny MVDream networks in the original config's terms, by text layout (vocab_size is the tokenizer's).
TINY_MVDREAM: dict[str, dict[str, Any]] = {
    "open_clip": {
        "unet": {
            "image_size": 16,
            "model_channels": 16,
            "attention_resolutions": [1],
            "num_res_blocks": 1,
            "channel_mult": [1, 2],
            "num_head_channels": 4,
            "use_linear_in_transformer": True,
            "context_dim": 32,
            "camera_dim": 16,
            "norm_groups": 8,
        },
        "vae": {"ch": 8, "ch_mult": [1, 2], "num_res_blocks": 1, "z_channels": 4, "norm_groups": 4},
        "text_encoder": {
            "layout": "open_clip",
            "layer": "penultimate",
            "width": 32,
            "layers": 3,
            "heads": 4,
            "mlp_width": 64,
            "embed_dim": 32,
            "context_length": 77,
        },
    },
    "clip": {
        "unet": {
            "image_size": 16,
            "model_channels": 16,
            "attention_resolutions": [1],
            "num_res_blocks": 1,
            "channel_mult": [1, 2],
            "num_heads": 4,
            "use_linear_in_transformer": False,
            "context_dim": 32,
            "camera_dim": 16,
            "norm_groups": 8,
        },
        "vae": {"ch": 8, "ch_mult": [1, 2], "num_res_blocks": 1, "z_channels": 4, "norm_groups": 4},
        "text_encoder": {
            "layout": "clip",
            "layer": "last",
            "width": 32,
            "layers": 2,
            "heads": 4,
            "mlp_width": 64,
            "embed_dim": 32,
            "context_length": 77,
        },
    },
}


def _tokenizer(folder: Path, layout: str) -> Any:
    from transformers import CLIPTokenizer

    write_clip_tokenizer(folder, pad_token="!" if layout == "open_clip" else "<|endoftext|>")
    return CLIPTokenizer.from_pretrained(folder)


def tiny_mvdream_networks(layout: str, seed: int, tokenizer: Any) -> tuple[MVDreamArchitecture, dict]:
    """The tiny architecture of `layout` and its random networks (the same for the same seed)."""
    cfg = TINY_MVDREAM[layout]
    text = {**cfg["text_encoder"], "vocab_size": len(tokenizer)}
    arch = MVDreamArchitecture.from_dict({**cfg, "text_encoder": text})
    torch.manual_seed(seed + 7)
    return arch, build_networks(arch, tokenizer)


def build_tiny_mvdream(checkpoint: Path, layout: str = "open_clip", seed: int = 0) -> Path:
    """Original-layout `.pt` (torch.save of the state dict, as released) + its architecture `<name>.json`."""
    checkpoint = Path(checkpoint)

    def build(out: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            arch, nets = tiny_mvdream_networks(layout, seed, _tokenizer(Path(tmp), layout))
        write_json(checkpoint.with_suffix(".json"), {"_comment": "tiny random MVDream", **arch.to_dict()})
        torch.save(to_original(nets, arch), out)

    return build_once(checkpoint, build)


def build_tiny_mvdream_diffusers(folder: Path, seed: int = 0) -> Path:
    """ashawkey/mvdream-sd2.1-diffusers layout with the weights of `build_tiny_mvdream(..., "open_clip", seed)`."""

    def build(out: Path) -> None:
        tokenizer = _tokenizer(out / "tokenizer", "open_clip")
        arch, nets = tiny_mvdream_networks("open_clip", seed, tokenizer)
        state = to_original(nets, arch)
        (out / "unet").mkdir()
        save_file({k.removeprefix(UNET_PREFIX): v for k, v in state.items() if k.startswith(UNET_PREFIX)},
                  str(out / "unet" / "diffusion_pytorch_model.safetensors"))  # fmt: skip
        write_json(out / "unet" / "config.json", {"_class_name": "MultiViewUNetModel", **arch.unet})
        nets["vae"].save_pretrained(out / "vae")
        nets["text_encoder"].save_pretrained(out / "text_encoder")
        _scheduler(out)
        model_index(out, "MVDreamPipeline", {
            "scheduler": ["diffusers", "DDIMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["mv_unet", "MultiViewUNetModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        })  # fmt: skip

    return build_once(Path(folder), build)


def build_tiny_sd21(folder: Path, seed: int = 0) -> Path:
    """SD2.1-base diffusers folder: OpenCLIP-style text encoder (GELU, "!" padding), linear projections, heads of
    width 4 per level (diffusers' attention_head_dim lists head counts), epsilon prediction."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    def build(out: Path) -> None:
        text_stack(out, seed, open_clip=True)
        torch.manual_seed(seed + 1)
        AutoencoderKL(**TINY_VAE).save_pretrained(out / "vae")
        _scheduler(out)
        torch.manual_seed(seed + 2)
        unet_cfg = {**TINY_UNET, "attention_head_dim": [4, 8], "use_linear_projection": True}
        UNet2DConditionModel(
            sample_size=16,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            **unet_cfg,
        ).save_pretrained(out / "unet")
        model_index(out, "StableDiffusionPipeline", SD_COMPONENTS)

    return build_once(Path(folder), build)


def build_tiny_sd21_single_file(sd21_folder: Path, checkpoint: Path, config_dir: Path) -> tuple[Path, Path]:
    """The tiny SD2.1-base as one original-layout .safetensors (OpenCLIP text tower) + a weightless config folder."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    def build_config(out: Path) -> None:
        shutil.copytree(sd21_folder, out, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))

    def build_ckpt(out: Path) -> None:
        unet = UNet2DConditionModel.from_pretrained(sd21_folder / "unet")
        vae = AutoencoderKL.from_pretrained(sd21_folder / "vae")
        text = CLIPTextModel.from_pretrained(sd21_folder / "text_encoder")
        state = unet_to_ldm(unet.state_dict(), unet.config.layers_per_block)
        state.update(vae_to_ldm(vae.state_dict(), len(vae.config.block_out_channels)))
        state.update(text_encoder_to_open_clip(text.state_dict(), text.config.projection_dim))
        save_file({k: v.contiguous() for k, v in state.items()}, str(out))

    return build_once(Path(checkpoint), build_ckpt), build_once(Path(config_dir), build_config)


def _scheduler(folder: Path) -> None:
    from diffusers import DDIMScheduler

    DDIMScheduler(**SD_SCHEDULER).save_pretrained(folder / "scheduler")
