"""The multi-view oracle on its own: exact epsilon for the true renders at the cameras its matrices encode; a large
residual for matrices that disagree with the views (shuffled, transposed, azimuth flipped) or a wrong CFG scale."""

from __future__ import annotations

import pytest
import torch

from a124_core.cameras import make_cameras
from a124_core.multiview_cameras import mvdream_camera_matrices, sample_multiview_cameras

from .multiview import decode_mvdream_camera, oracle_with_views

SIZE = 32


def _setup(seed: int = 0, groups: int = 2):
    oracle, views, truth = oracle_with_views(groups, seed, SIZE)
    gen = torch.Generator().manual_seed(seed + 1)
    z0 = oracle.encode_images(truth)
    noise = torch.randn(z0.shape, generator=gen)
    t = torch.full((len(views),), 600)
    return oracle, views, z0, noise, t, oracle.schedule.add_noise(z0, noise, t)


def _residual(oracle, matrices, noise, t, z_t, scale=50.0) -> float:
    cond = oracle.multiview_condition(oracle.text_condition("a panda"), matrices)
    return float((oracle.predict_noise(z_t, t, cond, scale) - noise).abs().mean())


def test_decoding_recovers_the_cameras_angles():
    views = sample_multiview_cameras(3, generator=torch.Generator().manual_seed(4))
    for m, polar, azimuth in zip(views.matrices, views.cameras.polar_deg, views.cameras.azimuth_deg):
        p, a = decode_mvdream_camera(m)
        assert p == pytest.approx(float(polar), abs=1e-3)
        assert (a - float(azimuth) + 180.0) % 360.0 - 180.0 == pytest.approx(0.0, abs=1e-3)
    assert decode_mvdream_camera(views.matrices[0].T) is None


def test_true_renders_give_the_exact_epsilon():
    oracle, views, _z0, noise, t, z_t = _setup()
    assert _residual(oracle, views.matrices, noise, t, z_t) < 1e-4
    assert oracle.invalid_cameras == 0


def test_cameras_that_disagree_with_the_views_give_a_large_residual():
    oracle, views, _z0, noise, t, z_t = _setup()
    exact = _residual(oracle, views.matrices, noise, t, z_t)
    shuffled = views.matrices[torch.tensor([1, 2, 3, 0, 5, 6, 7, 4])]  # each view given its neighbour's camera
    transposed = views.matrices.transpose(1, 2)
    cams = views.cameras
    flipped = mvdream_camera_matrices(make_cameras(cams.polar_deg, -cams.azimuth_deg, cams.radius, cams.fov_y_deg))
    residuals = {
        "shuffled": _residual(oracle, shuffled, noise, t, z_t),
        "transposed": _residual(oracle, transposed, noise, t, z_t),
        "azimuth flipped": _residual(oracle, flipped, noise, t, z_t),
        "CFG 100": _residual(oracle, views.matrices, noise, t, z_t, scale=100.0),
    }
    print("exact", exact, residuals)
    assert oracle.invalid_cameras == 8  # the transposed batch
    for name, value in residuals.items():
        assert value > 1000 * max(exact, 1e-6) and value > 0.02, (name, value)
