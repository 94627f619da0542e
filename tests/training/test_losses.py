"""Losses of SPEC 6 against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from a124_core.training import losses as L


def test_rgb_and_mask_losses_ignore_background():
    gt = torch.rand(1, 8, 8, 3)
    mask = torch.zeros(1, 8, 8, 1)
    mask[:, 2:6, 2:6] = 1
    pred = gt.clone()
    pred[:, :2] = 0.0  # wrong only outside the mask
    assert float(L.rgb_loss(pred, gt, mask)) == 0.0
    pred[:, 3, 3] += 0.5
    assert float(L.rgb_loss(pred, gt, mask)) == pytest.approx(3 * 0.25 / (8 * 8 * 3))
    assert float(L.mask_loss(mask, mask)) == 0.0
    assert float(L.mask_loss(torch.ones_like(mask), mask)) == pytest.approx(48 / 64)


def test_depth_loss_sign_convention():
    """Reference depth is larger = nearer; rendered depth is a distance: an exact inverse-affine match gives 0."""
    torch.manual_seed(0)
    gt = torch.rand(1, 16, 16, 1)  # nearness
    mask = (torch.rand(1, 16, 16, 1) > 0.3).float()
    distance = 2.5 - 0.7 * gt  # nearer pixels have smaller distances
    assert float(L.depth_loss(distance, gt, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(L.depth_loss(gt, gt, mask)) == pytest.approx(1.0, abs=1e-6)  # the wrong sign is the worst case
    # Outside the mask nothing counts.
    noisy = distance.clone()
    noisy[mask == 0] = 100.0
    assert float(L.depth_loss(noisy, gt, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(L.depth_loss(distance, gt, torch.zeros_like(mask))) == 0.0


def test_opacity_entropy_and_orientation():
    assert float(L.opacity_entropy(torch.full((1, 4, 4, 1), 0.5))) == pytest.approx(math.log(2), rel=1e-5)
    solid = torch.cat([torch.zeros(1, 4, 2, 1), torch.ones(1, 4, 2, 1)], 2)
    assert float(L.opacity_entropy(solid)) < 1e-3
    assert float(L.orientation_loss(torch.full((1, 3, 3, 1), 0.2))) == pytest.approx(0.2)


def test_normal_smoothness():
    flat = torch.ones(1, 12, 12, 3) * torch.tensor([0.0, 0.0, 1.0])
    assert float(L.normal_tv(flat)) == 0.0
    assert float(L.normal_blur_loss(flat)) == pytest.approx(0.0, abs=1e-10)
    checker = ((torch.arange(12)[:, None] + torch.arange(12)[None]) % 2).float()[None, :, :, None].expand(1, 12, 12, 3)
    assert float(L.normal_tv(checker)) == pytest.approx(2.0)  # every neighbour differs by 1 in all 3 channels
    assert float(L.normal_blur_loss(checker)) > 0.1
    blurred = L.gaussian_blur(torch.rand(2, 10, 10, 3), 2.0)
    assert blurred.shape == (2, 10, 10, 3)


def test_ramp():
    assert L.ramp(0, 100) == 0.0
    assert L.ramp(25, 100) == pytest.approx(0.5)
    assert L.ramp(50, 100) == 1.0 and L.ramp(99, 100) == 1.0
