"""Tiny random-weight monocular depth models written in the real transformers on-disk layout.

Tests (and the CLI's smoke preset) load them through `AutoModelForDepthEstimation` /
`AutoImageProcessor.from_pretrained` with the hub blocked, so `depth.py` is exercised on the same folder
structure a user downloads (`config.json`, `model.safetensors`, `preprocessor_config.json`). Sizes follow
FACTS.md: a few hundred K parameters, a forward pass in milliseconds on CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch

#: Input resolution the tiny processors resize to (a multiple of the tiny patch size 8).
TINY_DEPTH_INPUT = 64


def _processor_kwargs() -> dict:
    return {
        "do_resize": True,
        "size": {"height": TINY_DEPTH_INPUT, "width": TINY_DEPTH_INPUT},
        "keep_aspect_ratio": False,
        "ensure_multiple_of": 8,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "do_pad": False,
    }


def _lively_init(model: torch.nn.Module, last_conv: torch.nn.Conv2d) -> None:
    """Re-draw weights at unit gain so the random map varies across the image instead of collapsing to ~0.

    transformers' init (std 0.02) plus the head's final ReLU gives a near-constant map, which would make
    the in-mask normalisation degenerate; depth tests need spatial variation to mean anything.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, 1.0 / fan_in**0.5)
                if module.bias is not None:
                    module.bias.zero_()
        last_conv.weight.mul_(0.25)
        last_conv.bias.fill_(1.0)


def build_tiny_dpt(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random `DPTForDepthEstimation` (ViT backbone, not hybrid) + its processor; returns `folder`."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    folder = Path(folder)
    config = DPTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=64,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        reassemble_factors=[4, 2, 1, 0.5],
        is_hybrid=False,
        head_in_index=-1,
    )
    torch.manual_seed(seed)
    model = DPTForDepthEstimation(config).train(False)
    _lively_init(model, model.head.head[4])
    model.save_pretrained(folder, safe_serialization=True)
    DPTImageProcessor(**_processor_kwargs()).save_pretrained(folder)
    return folder


def build_tiny_depth_anything(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random `DepthAnythingForDepthEstimation` (Dinov2 backbone) + its processor; returns `folder`."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    folder = Path(folder)
    backbone = Dinov2Config(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        mlp_ratio=2,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=8,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        reassemble_factors=[4, 2, 1, 0.5],
        fusion_hidden_size=16,
        head_hidden_size=8,
        head_in_index=-1,
    )
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(config).train(False)
    _lively_init(model, model.head.conv3)
    model.save_pretrained(folder, safe_serialization=True)
    DPTImageProcessor(**_processor_kwargs()).save_pretrained(folder)
    return folder
