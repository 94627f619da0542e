"""A tiny random-weight CLIPModel folder in the real layout, for the metric tests and the host tests.

The folder holds what `openai/clip-vit-base-patch32` holds (config.json, model.safetensors, tokenizer files,
preprocessor_config.json), so `ClipEvaluator` loads it through the same code as the real model, offline.
Sizes from FACTS.md: text tower hidden 32, 2 layers, 4 heads, ffn 64, 77 positions; vision tower image 32,
patch 8, hidden 32; projection 16. Its scores are meaningless numbers; only the arithmetic is tested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from a124_core.checkpoint import atomic_write_text
from a124_core.priors.tiny import write_clip_tokenizer


@dataclass
class TinyClipConfig:
    """Sizes of the tiny CLIP model."""

    hidden_size: int = 32
    """Width of both towers."""
    num_layers: int = 2
    """Transformer layers per tower."""
    num_heads: int = 4
    """Attention heads per layer."""
    intermediate_size: int = 64
    """MLP width inside each layer."""
    image_size: int = 32
    """Vision input side (the processor resizes/crops to it)."""
    patch_size: int = 8
    """Vision patch side."""
    projection_dim: int = 16
    """Shared embedding size of images and texts."""
    max_positions: int = 77
    """Text context length (CLIP's 77)."""
    seed: int = 0
    """Seed of the random weights (same seed -> identical files)."""


def write_tiny_clip(folder: str | Path, config: TinyClipConfig | None = None) -> Path:
    """Write a random CLIPModel + tokenizer + image processor into `folder`; returns the folder.

    Idempotent: an existing complete folder is left as is.
    """
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    config = config or TinyClipConfig()
    folder = Path(folder)
    expected = ("config.json", "model.safetensors", "preprocessor_config.json", "vocab.json", "merges.txt")
    if all((folder / name).is_file() for name in expected):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    write_clip_tokenizer(folder)
    tokenizer = CLIPTokenizer.from_pretrained(str(folder), model_max_length=config.max_positions)
    tower = {
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "intermediate_size": config.intermediate_size,
        "projection_dim": config.projection_dim,
    }
    text_config = {
        **tower,
        "vocab_size": len(tokenizer),
        "max_position_embeddings": config.max_positions,
        # The text tower pools at the first eos token: its id must be this vocabulary's, not CLIP's 49407.
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision_config = {**tower, "image_size": config.image_size, "patch_size": config.patch_size}
    clip_config = CLIPConfig(
        text_config=text_config, vision_config=vision_config, projection_dim=config.projection_dim
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(config.seed)
    try:
        model = CLIPModel(clip_config).train(False)
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(str(folder), safe_serialization=True)
    processor = CLIPImageProcessor(
        size={"shortest_edge": config.image_size},
        crop_size={"height": config.image_size, "width": config.image_size},
    )
    processor.save_pretrained(str(folder))
    meta = json.loads((folder / "config.json").read_text())
    meta["_a124_note"] = "tiny random-weight CLIP for tests; its scores are not meaningful"
    atomic_write_text(folder / "config.json", json.dumps(meta, indent=2))
    return folder
