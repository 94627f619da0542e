"""Fixtures for the node tests: the pack imported as a package, tiny models in a ComfyUI models folder, and
stand-in ComfyUI modules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from a124_core.priors.tiny import build_tiny_models
from a124_core.reference.tiny_depth import build_tiny_dpt
from tests.tiny_clip import write_tiny_clip

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fake_comfy  # noqa: E402
from node_env import EXAMPLES, import_pack  # noqa: E402


@pytest.fixture(scope="session")
def pack():
    return import_pack()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """A ComfyUI-like models folder with every tiny prior, a tiny CLIP and a tiny depth model."""
    root = tmp_path_factory.mktemp("models")
    build_tiny_models(root)
    write_tiny_clip(root / "clip" / "tiny-clip-vit-b-32")
    build_tiny_dpt(root / "depth_models" / "tiny-dpt")
    return root


@pytest.fixture
def comfy_env(models_dir, tmp_path, monkeypatch):
    """Stand-in folder_paths (tiny models, a fresh output folder) and comfy modules (no interrupt)."""
    out = tmp_path / "output"
    out.mkdir()
    modules = {"folder_paths": fake_comfy.make_folder_paths(models_dir, out), **fake_comfy.make_comfy()}
    fake_comfy.install(monkeypatch, modules)
    return modules


@pytest.fixture(scope="session")
def panda_rgba():
    """panda-dance RGBA as a ComfyUI IMAGE [1, H, W, 3] and LoadImage-style MASK [1, H, W] (1 - alpha), 96 px."""
    import numpy as np
    import torch
    from PIL import Image

    img = Image.open(EXAMPLES / "panda-dance" / "rgba.png").convert("RGBA").resize((96, 96))
    arr = torch.from_numpy(np.asarray(img).astype("float32") / 255.0)
    return arr[None, ..., :3].contiguous(), (1.0 - arr[None, ..., 3]).contiguous()
