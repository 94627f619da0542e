"""Tiny random-weight MVDream models in the released layouts (tests, smoke runs).

MVDream: the original `.pt` layout (`MVDreamArchitecture` in the original config's terms, written beside the file
as `<name>.json`; the loader reads such a sidecar) for both released variants, SD2.1-base's (OpenCLIP text tower
read at its penultimate block, linear transformer projections, heads of fixed width) and SD1.5's (CLIP, 1x1-conv
projections, a fixed head count); and the diffusers-layout folder of ashawkey/mvdream-sd2.1-diffusers, holding the
same weights as the SD2.1 `.pt`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from .ldm_format import UNET_PREFIX
from .mvdream_arch import MVDreamArchitecture, build_networks
from .mvdream_weights import to_original
from .tiny_files import SD_SCHEDULER, build_once, model_index, write_json
from .tiny_tokenizer import write_clip_tokenizer

#: The tiny MVDream networks in the original config's terms, by text layout (vocab_size is the tokenizer's).
_TINY_UNET = {
    "image_size": 16,
    "model_channels": 16,
    "attention_resolutions": [1],
    "num_res_blocks": 1,
    "channel_mult": [1, 2],
    "context_dim": 32,
    "camera_dim": 16,
    "norm_groups": 8,
}
_TINY_VAE = {"ch": 8, "ch_mult": [1, 2], "num_res_blocks": 1, "z_channels": 4, "norm_groups": 4}
_TINY_TEXT = {"width": 32, "heads": 4, "mlp_width": 64, "embed_dim": 32, "context_length": 77}
#: The tiny MVDream networks in the original config's terms, by text layout (vocab_size is the tokenizer's).
TINY_MVDREAM: dict[str, dict[str, Any]] = {
    "open_clip": {
        "unet": {**_TINY_UNET, "num_head_channels": 4, "use_linear_in_transformer": True},
        "vae": _TINY_VAE,
        "text_encoder": {**_TINY_TEXT, "layout": "open_clip", "layer": "penultimate", "layers": 3},
    },
    "clip": {
        "unet": {**_TINY_UNET, "num_heads": 4, "use_linear_in_transformer": False},
        "vae": _TINY_VAE,
        "text_encoder": {**_TINY_TEXT, "layout": "clip", "layer": "last", "layers": 2},
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


def _scheduler(folder: Path) -> None:
    from diffusers import DDIMScheduler

    DDIMScheduler(**SD_SCHEDULER).save_pretrained(folder / "scheduler")
