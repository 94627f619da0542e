"""Bad input is handled or rejected with a clear message before any model is loaded (issue 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from a124_core.reference import ReferenceConfig, build_reference


def _disc(h: int = 96, w: int = 128, radius: float = 24.0) -> tuple[np.ndarray, np.ndarray]:
    """An orange disc on a blue background: rgb uint8 [h, w, 3] and its mask uint8 [h, w] (255 inside)."""
    yy, xx = np.mgrid[:h, :w]
    inside = (yy - h / 2 + 0.5) ** 2 + (xx - w / 3) ** 2 < radius**2
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[...] = (30, 60, 200)
    rgb[inside] = (240, 140, 20)
    return rgb, inside.astype(np.uint8) * 255


def test_empty_mask_rejected():
    rgb, mask = _disc()
    with pytest.raises(ValueError, match="foreground is empty"):
        build_reference(Image.fromarray(rgb), mask=Image.fromarray(mask * 0))
    rgba = np.dstack([rgb, np.zeros_like(mask)])  # fully transparent image
    with pytest.raises(ValueError, match="foreground is empty"):
        build_reference(Image.fromarray(rgba, mode="RGBA"))


def test_tiny_image_rejected():
    with pytest.raises(ValueError, match="1x1 px; it needs at least 16"):
        build_reference(Image.new("RGBA", (1, 1), (255, 0, 0, 255)))
    with pytest.raises(ValueError, match="at least 16"):
        build_reference(torch.ones(1, 1, 4))


def test_huge_image_downscaled_first():
    w, h = 10000, 400
    rgba = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    rgba.paste(Image.new("RGBA", (3000, 300), (200, 50, 50, 255)), (5000, 50))  # 3000 x 300 box
    ref = build_reference(rgba)
    assert ref.meta["downscaled"] and max(ref.meta["input_size"]) == 2048
    mask = ref.mask[0] > 0
    cols = torch.nonzero(mask.any(0)).flatten()
    rows = torch.nonzero(mask.any(1)).flatten()
    assert abs(int(cols[-1] - cols[0] + 1) - 0.6 * 256) <= 2
    assert abs(int(rows[-1] - rows[0] + 1) - 0.06 * 256) <= 2  # 300 / 3000 of the longer side
    solid = ref.alpha[0] > 0.999  # edge pixels are partly composited on white
    assert solid.sum() > 0.8 * mask.sum()
    assert torch.allclose(ref.rgb[:, solid], torch.tensor([200, 50, 50]).float()[:, None] / 255, atol=2 / 255)


def test_mask_size_mismatch_rejected_before_model_load(tmp_path):
    rgb, mask = _disc()
    with pytest.raises(ValueError, match=r"mask is 64x48 px but the image is 128x96 px"):
        # the depth-model folder does not exist: the mask must be rejected first
        build_reference(Image.fromarray(rgb), mask=Image.fromarray(mask).resize((64, 48)), depth_model=tmp_path / "x")
    with pytest.raises(ValueError, match="mask is 128x96 px but the image is 96x128"):
        build_reference(torch.rand(128, 96, 3), mask=torch.ones(96, 128))


def test_greyscale_and_cmyk_accepted():
    rgb, mask = _disc()
    ref_rgb = build_reference(Image.fromarray(rgb), mask=Image.fromarray(mask))
    grey = Image.fromarray(rgb).convert("L")
    ref_grey = build_reference(grey, mask=Image.fromarray(mask))
    assert torch.equal(ref_grey.rgb[0], ref_grey.rgb[1]) and torch.equal(ref_grey.rgb[1], ref_grey.rgb[2])
    assert torch.equal(ref_grey.mask, ref_rgb.mask)
    la = Image.merge("LA", (grey, Image.fromarray(mask)))  # grey + alpha: the alpha is the foreground
    assert torch.equal(build_reference(la).mask, ref_rgb.mask)
    cmyk = Image.fromarray(rgb).convert("CMYK")
    ref_cmyk = build_reference(cmyk, mask=Image.fromarray(mask))
    assert (ref_cmyk.rgb - ref_rgb.rgb).abs().max() <= 1 / 255 + 1e-6
    # a one-channel ComfyUI IMAGE tensor is greyscale too
    ref_t = build_reference(
        torch.from_numpy(np.array(grey)).float()[..., None] / 255, mask=torch.from_numpy(mask) / 255
    )
    assert torch.equal(ref_t.rgb, ref_grey.rgb)


def test_other_bad_inputs():
    rgb, mask = _disc()
    with pytest.raises(ValueError, match="I;16"):
        build_reference(Image.fromarray(mask).convert("I;16"), mask=Image.fromarray(mask))
    with pytest.raises(ValueError, match="batch of 2"):
        build_reference(torch.rand(2, 32, 32, 3))
    with pytest.raises(ValueError, match=r"expected \[0, 1\]"):
        build_reference(torch.from_numpy(rgb).float(), mask=torch.ones(96, 128))
    with pytest.raises(ValueError, match="C = 1, 3 or 4"):
        build_reference(torch.rand(32, 32, 2))
    with pytest.raises(ValueError, match="either a depth image or a depth model"):
        build_reference(Image.fromarray(rgb), mask=Image.fromarray(mask), depth=mask, depth_model="somewhere")
    with pytest.raises(ValueError, match="different aspect ratio"):
        build_reference(Image.fromarray(rgb), mask=Image.fromarray(mask), depth=np.ones((50, 50), np.float32))
    with pytest.raises(ValueError, match="constant inside"):
        build_reference(Image.fromarray(rgb), mask=Image.fromarray(mask), depth=np.ones((96, 128), np.float32))
    with pytest.raises(ValueError, match="border_ratio"):
        ReferenceConfig(border_ratio=0.5)
    with pytest.raises(ValueError, match="PIL image, a torch tensor or a numpy array"):
        build_reference("image.png")


def test_opaque_alpha_falls_back_to_mask():
    """An RGBA image whose alpha is all 255 (a JPEG saved as PNG) uses the given mask instead."""
    rgb, mask = _disc()
    rgba = Image.fromarray(np.dstack([rgb, np.full_like(mask, 255)]), mode="RGBA")
    ref = build_reference(rgba, mask=Image.fromarray(mask))
    assert ref.foreground_source == "mask"
    assert torch.equal(ref.mask, build_reference(Image.fromarray(rgb), mask=Image.fromarray(mask)).mask)
