"""Shared fixtures of the output tests: one tiny random CLIP folder per session, smooth test videos."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.tiny_clip import write_tiny_clip


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A tiny CLIPModel folder in the real layout (written once per test session)."""
    return write_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def smooth_video(frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A video [N, H, W, 3] of smooth colour fields that change per frame (codec-friendly, all frames distinct)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(frames, 3, 3, 4, generator=gen)
    video = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=True)
    return video.permute(0, 2, 3, 1).contiguous()


def small_deformation_field(seed: int = 0, strength: float = 0.05):
    """A DeformationField whose canonical scene is the blob sphere (radius ~0.34 at density 10) and whose random
    displacement is smooth and one-to-one (|d| ~ 0.1), every grid level unmasked."""
    from a124_core.fields.deformation import DeformationConfig, DeformationField
    from a124_core.fields.encoding import GridConfig
    from a124_core.fields.hash_encoding import HashGridConfig
    from a124_core.fields.static import FieldConfig, StaticField

    torch.manual_seed(seed)
    grid = GridConfig(num_levels=4, base_resolution=4, finest_resolution=32, log2_entries_per_level=12)
    static = StaticField(FieldConfig(grid=grid))
    with torch.no_grad():
        static.encoder.embeddings.uniform_(-0.3, 0.3)
    deform = DeformationConfig(grid=HashGridConfig(num_levels=4, finest_resolution=16, log2_hashmap_size=12))
    field = DeformationField.from_static(static, deform)
    with torch.no_grad():
        field.encoder.embeddings.uniform_(-1, 1)
        field.mlp[-1].weight.normal_(std=strength)
    field.set_progress(10**6)
    return field


@pytest.fixture(scope="module")
def deformation_field():
    return small_deformation_field()
