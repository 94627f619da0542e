"""Depth from tiny random transformers models (loaded offline) and from given depth images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from a124_core.reference import DepthEstimator, ReferenceConfig, build_reference


@pytest.fixture(scope="module")
def panda(examples) -> Image.Image:
    return Image.open(examples / "panda-dance" / "rgba.png")


@pytest.mark.parametrize("which", ["tiny_dpt", "tiny_depth_anything"])
def test_depth_model_offline(request, panda, which):
    folder = request.getfixturevalue(which)
    ref = build_reference(panda, depth_model=folder)
    depth, mask = ref.depth, ref.mask
    assert depth.shape == (1, 256, 256) and depth.dtype == torch.float32
    assert depth.min() >= 0 and depth.max() <= 1
    assert depth[mask == 0].abs().max() == 0
    assert depth[mask > 0].min() == 0 and depth[mask > 0].max() == 1
    assert depth[mask > 0].std() > 0.01  # a real map, not a constant
    assert ref.depth_source == f"model:{folder.name}"

    # the same estimator, loaded once and reused, gives the same map
    estimator = DepthEstimator(folder)
    assert estimator.larger_is_nearer
    again = build_reference(panda, depth_model=estimator)
    assert torch.equal(again.depth, depth)


def test_given_depth_orientation():
    """A depth image that grows to the right stays a left-to-right ramp inside the mask; invert flips it."""
    h, w = 120, 160
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    mask = ((yy - 60) ** 2 / 40**2 + (xx - 90) ** 2 / 50**2 < 1).astype(np.float32)
    rgb = np.full((h, w, 3), 0.4, np.float32)
    depth = xx / w  # nearer to the right
    ref = build_reference(torch.from_numpy(rgb), mask=torch.from_numpy(mask), depth=torch.from_numpy(depth))
    inside = ref.mask[0] > 0
    cols = torch.arange(256).float().expand(256, -1)
    corr = torch.corrcoef(torch.stack([cols[inside], ref.depth[0][inside]]))[0, 1]
    assert corr > 0.99
    flipped = build_reference(
        torch.from_numpy(rgb),
        mask=torch.from_numpy(mask),
        depth=torch.from_numpy(depth),
        config=ReferenceConfig(depth_invert=True),
    )
    assert torch.allclose(flipped.depth[0][inside], 1 - ref.depth[0][inside], atol=1e-6)
    assert flipped.depth[0][~inside].abs().max() == 0

    # a depth map at another resolution with the same aspect ratio is resized; 16-bit PNGs work
    small = Image.fromarray((depth[::2, ::2] * 60000).astype(np.uint16))
    half = build_reference(torch.from_numpy(rgb), mask=torch.from_numpy(mask), depth=small)
    assert (half.depth - ref.depth).abs().mean() < 0.01


def test_incomplete_depth_folder(tmp_path, tiny_dpt, panda):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_reference(panda, depth_model=tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_dpt / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="preprocessor_config.json and model.safetensors"):
        build_reference(panda, depth_model=broken)
    not_depth = tmp_path / "not-depth"
    not_depth.mkdir()
    for name in ("preprocessor_config.json", "model.safetensors"):
        (not_depth / name).write_bytes((tiny_dpt / name).read_bytes())
    (not_depth / "config.json").write_text(json.dumps({"model_type": "vit", "architectures": ["ViTModel"]}))
    with pytest.raises(ValueError, match="not a depth estimator"):
        build_reference(panda, depth_model=not_depth)
