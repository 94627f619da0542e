"""Shared fixtures of the output tests: one tiny random CLIP folder per session, smooth test videos."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from a124_core.outputs.tiny_clip import write_tiny_clip


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
