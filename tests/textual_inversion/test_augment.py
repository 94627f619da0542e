"""Plain-torch augmentations against geometric and photometric oracles."""

from __future__ import annotations

import math

import pytest
import torch

from a124_core.textual_inversion.augment import AugmentConfig, augment, gaussian_blur, photometric, warp


def _centroid(img: torch.Tensor) -> tuple[float, float]:
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    w = img[0]
    return float((w * ys).sum() / w.sum()), float((w * xs).sum() / w.sum())


def _blob(y: int, x: int) -> torch.Tensor:
    img = torch.zeros(1, 64, 64)
    img[0, y - 2 : y + 2, x - 2 : x + 2] = 1
    return img


def test_warp_geometry():
    blob = _blob(22, 42)  # centroid (21.5, 41.5): 10 px above and right of the centre (31.5, 31.5)
    assert torch.equal(warp(blob, False, 0.0, 1.0, 0.0, 0.0), blob)  # identity
    assert torch.equal(warp(blob, True, 0.0, 1.0, 0.0, 0.0), blob.flip(-1))
    assert torch.allclose(warp(blob, True, 1e-9, 1.0, 0.0, 0.0), blob.flip(-1), atol=1e-5)  # resampled path

    # rotation by 10 deg: counter-clockwise on screen around the centre, radius kept
    y, x = _centroid(warp(blob, False, 10.0, 1.0, 0.0, 0.0))
    dy, dx = 31.5 - y, x - 31.5  # y up
    a = math.radians(10)
    assert dx == pytest.approx(10 * math.cos(a) - 10 * math.sin(a), abs=0.05)
    assert dy == pytest.approx(10 * math.sin(a) + 10 * math.cos(a), abs=0.05)

    # scale 0.5 zooms in: offsets from the centre double; the blob's mass grows 4x
    zoomed = warp(blob, False, 0.0, 0.5, 0.0, 0.0)
    y, x = _centroid(zoomed)
    assert (y, x) == (pytest.approx(11.5, abs=0.05), pytest.approx(51.5, abs=0.05))
    assert float(zoomed.sum()) == pytest.approx(4 * float(blob.sum()), rel=0.02)
    # shift: tx = 0.25 samples a quarter of the half-width (8 px) to the right, so content moves left
    assert _centroid(warp(blob, False, 0.0, 1.0, 0.25, 0.0))[1] == pytest.approx(33.5, abs=0.05)


def test_photometric_oracles():
    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand(3, 32, 32)
    grey_only = AugmentConfig(jitter_p=0, grayscale_p=1, blur_p=0)
    g = photometric(rgb, grey_only, gen)
    assert torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])
    assert torch.allclose(g[0], 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])
    # zero-strength jitter is the identity (hue rotation by 0 turns included)
    still = AugmentConfig(jitter_p=1, brightness=0, contrast=0, saturation=0, hue=0, grayscale_p=0, blur_p=0)
    assert torch.allclose(photometric(rgb, still, gen), rgb, atol=1e-5)
    # hue jitter keeps grey pixels grey
    hue = AugmentConfig(jitter_p=1, brightness=0, contrast=0, saturation=0, hue=0.5, grayscale_p=0, blur_p=0)
    grey = torch.full((3, 8, 8), 0.4)
    assert torch.allclose(photometric(grey, hue, gen), grey, atol=1e-5)
    # blur keeps constants and the mean, reduces the variance of noise
    const = torch.full((3, 32, 32), 0.3)
    assert torch.allclose(gaussian_blur(const, 1.5), const, atol=1e-6)
    blurred = gaussian_blur(rgb, 1.5)
    assert blurred.var() < 0.3 * rgb.var() and abs(blurred.mean() - rgb.mean()) < 0.01


def test_augment_is_seeded_and_composites_on_background():
    rgba = torch.zeros(4, 64, 64)
    rgba[:3, 16:48, 16:48] = torch.tensor([0.9, 0.2, 0.1])[:, None, None]
    rgba[3, 16:48, 16:48] = 1
    cfg = AugmentConfig()
    a = [augment(rgba, torch.ones(3), cfg, torch.Generator().manual_seed(5)) for _ in range(2)]
    assert torch.equal(a[0], a[1])
    assert a[0].shape == (3, 64, 64) and a[0].min() >= 0 and a[0].max() <= 1
    plain = AugmentConfig(flip_p=0, rotate_p=0, crop_scale=(1, 1), jitter_p=0, grayscale_p=0, blur_p=0)
    out = augment(rgba, torch.tensor([0.0, 0.0, 1.0]), plain, torch.Generator().manual_seed(0))
    assert torch.allclose(out[:, 0, 0], torch.tensor([0.0, 0.0, 1.0]))  # background colour outside
    assert torch.allclose(out[:, 32, 32], torch.tensor([0.9, 0.2, 0.1]))
    # over many draws, the object's area follows the crop scale: area ratio 1 / s^2 with s in [0.85, 1.15]
    draws = torch.stack([augment(rgba, torch.ones(3), cfg, torch.Generator().manual_seed(s)) for s in range(64)])
    ratio = ((1 - draws).abs().sum(1) > 0.3).float().sum((1, 2)) / (32 * 32)
    assert ratio.min() > 1 / 1.15**2 - 0.05 and ratio.max() < 1 / 0.85**2 + 0.05
    assert (ratio < 0.9).any() and (ratio > 1.1).any()
