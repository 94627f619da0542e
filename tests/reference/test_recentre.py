"""Recentring on the real example references, against an independent PIL implementation of the transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from a124_core.reference import Reference, ReferenceConfig, build_reference
from a124_core.reference.recentre import checkerboard

from .conftest import EXAMPLE_NAMES


def _bbox(mask: torch.Tensor) -> tuple[int, int, int, int]:
    ys = torch.nonzero(mask.any(dim=1)).flatten()
    xs = torch.nonzero(mask.any(dim=0)).flatten()
    return int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1


def _pil_oracle(alpha: np.ndarray, border: float, size: int, channel: np.ndarray | None = None) -> np.ndarray:
    """The same square frame cut from `channel` (default: alpha) and resized by PIL (float box, own filter)."""
    ys, xs = np.nonzero(alpha > 0.5)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = max(y1 - y0, x1 - x0) / (1 - 2 * border)
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    pad = int(side) + 2
    canvas = np.zeros((alpha.shape[0] + 2 * pad, alpha.shape[1] + 2 * pad), np.float32)
    canvas[pad : pad + alpha.shape[0], pad : pad + alpha.shape[1]] = alpha if channel is None else channel
    box = (cx - side / 2 + pad, cy - side / 2 + pad, cx + side / 2 + pad, cy + side / 2 + pad)
    return np.asarray(Image.fromarray(canvas, mode="F").resize((size, size), Image.Resampling.BILINEAR, box=box))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
@pytest.mark.parametrize("border", [0.2, 0.1])
def test_bbox_span_and_iou(examples, name, border):
    image = Image.open(examples / name / "rgba.png")
    ref = build_reference(image, config=ReferenceConfig(border_ratio=border))
    assert ref.foreground_source == "alpha" and ref.depth is None
    assert ref.rgb.shape == (3, 256, 256) and ref.mask.shape == ref.alpha.shape == (1, 256, 256)
    assert ref.rgba_512.shape == (4, 512, 512) and ref.preview.shape == (256, 256, 3)

    y0, y1, x0, x1 = _bbox(ref.mask[0] > 0.5)
    target = (1 - 2 * border) * 256
    assert abs(max(y1 - y0, x1 - x0) - target) <= 2, (y0, y1, x0, x1, target)
    assert abs((y0 + y1) / 2 - 128) <= 2 and abs((x0 + x1) / 2 - 128) <= 2  # centred

    alpha = np.asarray(image, dtype=np.float32)[..., 3] / 255.0
    oracle = torch.from_numpy(_pil_oracle(alpha, border, 256) > 0.5)
    ours = ref.mask[0] > 0.5
    iou = (ours & oracle).sum().item() / (ours | oracle).sum().item()
    assert iou >= 0.99, iou

    # the 512 copy is the same frame at twice the resolution
    big = torch.nn.functional.avg_pool2d(ref.rgba_512[3:][None], 2)[0]
    assert (big - ref.alpha).abs().mean() < 0.01


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_rgb_plus_mask_equals_rgba(examples, name):
    rgba = Image.open(examples / name / "rgba.png")
    rgb, mask = rgba.convert("RGB"), rgba.getchannel("A")
    a = build_reference(rgba)
    b = build_reference(rgb, mask=mask)
    assert b.foreground_source == "mask"
    for key in ("rgb", "alpha", "mask", "rgba_512", "preview"):
        assert torch.equal(getattr(a, key), getattr(b, key)), key

    # ComfyUI layout: IMAGE [H, W, C] floats, MASK [H, W]
    arr = torch.from_numpy(np.asarray(rgba).copy()).float() / 255.0
    c = build_reference(arr[..., :3], mask=arr[..., 3])
    d = build_reference(arr[None])  # a batch of one is accepted too
    for key in ("rgb", "alpha", "mask", "rgba_512"):
        assert torch.equal(getattr(a, key), getattr(c, key)), key
        assert torch.equal(getattr(a, key), getattr(d, key)), key


def test_composite_preview_and_roundtrip(examples, tmp_path):
    ref = build_reference(
        Image.open(examples / "panda-dance" / "rgba.png"), depth=Image.open(examples / "panda-dance" / "depth.png")
    )
    outside = ref.alpha[0] == 0
    assert outside.float().mean() > 0.3
    assert torch.all(ref.rgb[:, outside] == 1.0)  # composited on white
    board = checkerboard(256)
    assert torch.allclose(ref.preview[outside], board[outside][:, None].expand(-1, 3))
    assert set(ref.mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(ref.mask, (ref.alpha > 0.5).float())
    # the RGBA copy recomposited on white gives the 256 image back (up to resampling)
    a512 = ref.rgba_512[3:]
    white = ref.rgba_512[:3] * a512 + (1 - a512)
    assert (torch.nn.functional.avg_pool2d(white[None], 2)[0] - ref.rgb).abs().mean() < 0.01

    path = ref.save(tmp_path / "ref.safetensors")
    back = Reference.load(path)
    for key in ("rgb", "alpha", "mask", "depth", "rgba_512", "preview"):
        assert torch.equal(getattr(ref, key), getattr(back, key)), key
    assert back.border_ratio == ref.border_ratio and back.depth_source == "image"
    moved = back.to("meta")
    assert moved.rgb.device.type == "meta" and back.rgb.device.type == "cpu"


def test_given_depth_matches_example(examples):
    """The example depth (larger = nearer, 0 outside) survives recentring with its ordering intact."""
    ref = build_reference(
        Image.open(examples / "fox-game" / "rgba.png"), depth=Image.open(examples / "fox-game" / "depth.png")
    )
    depth, mask = ref.depth[0], ref.mask[0] > 0
    assert ref.depth.shape == (1, 256, 256)
    assert depth[~mask].abs().max() == 0
    assert depth[mask].min() == 0 and depth[mask].max() == 1
    # oracle: the same frame of the raw depth, cut by PIL, is perfectly rank-correlated inside the mask
    raw = np.asarray(Image.open(examples / "fox-game" / "depth.png"), dtype=np.float32)
    alpha = np.asarray(Image.open(examples / "fox-game" / "rgba.png"), dtype=np.float32)[..., 3] / 255
    num = _pil_oracle(alpha, 0.2, 256, channel=raw * alpha)  # premultiplied, as the library does
    den = _pil_oracle(alpha, 0.2, 256)
    expected = torch.from_numpy(num / np.maximum(den, 1e-4))[mask]
    corr = torch.corrcoef(torch.stack([expected, depth[mask]]))[0, 1]
    assert corr > 0.99, corr
