"""MVDream's camera matrices against the original code's numbers and threestudio's z-up cameras; the view sampling."""

from __future__ import annotations

import math

import pytest
import torch

from a124_core.multiview_cameras import (
    MultiViewCameraConfig,
    mvdream_camera_matrices,
    orbit_group,
    sample_multiview_cameras,
)

#: bytedance/MVDream camera_utils.get_camera(4, elevation=15, azimuth_start=30) (run once; rows = views).
MVDREAM_GET_CAMERA = [
    [0.866025, -0.12941, 0.482963, 0.482963, 0.5, 0.224144, -0.836516, -0.836516, 0, 0.965926, 0.258819, 0.258819,
     0, 0, 0, 1],
    [-0.5, -0.224144, 0.836516, 0.836516, 0.866025, -0.12941, 0.482963, 0.482963, 0, 0.965926, 0.258819, 0.258819,
     0, 0, 0, 1],
    [-0.866025, 0.12941, -0.482963, -0.482963, -0.5, -0.224144, 0.836516, 0.836516, 0, 0.965926, 0.258819, 0.258819,
     0, 0, 0, 1],
    [0.5, 0.224144, -0.836516, -0.836516, -0.866025, 0.12941, -0.482963, -0.482963, 0, 0.965926, 0.258819, 0.258819,
     0, 0, 0, 1],
]  # fmt: skip


def test_matrices_equal_the_original_get_camera():
    group = orbit_group(elevation_deg=15.0, azimuth_start_deg=30.0, distance=2.7)  # distance is normalised away
    flat = group.matrices.reshape(4, 16)
    torch.testing.assert_close(flat, torch.tensor(MVDREAM_GET_CAMERA), rtol=0, atol=2e-6)
    assert torch.allclose(group.cameras.polar_deg, torch.full((4,), 75.0))


def _threestudio_c2w(elevation_deg: float, azimuth_deg: float, distance: float) -> torch.Tensor:
    """threestudio's random_multiview camera (z-up world, azimuth from +x toward +y), written out."""
    e, a = math.radians(elevation_deg), math.radians(azimuth_deg)
    pos = torch.tensor([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)]) * distance
    lookat = -pos / pos.norm()
    right = torch.linalg.cross(lookat, torch.tensor([0.0, 0.0, 1.0]))
    right = right / right.norm()
    up = torch.linalg.cross(right, lookat)
    c2w = torch.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, -lookat, pos
    return c2w


def test_threestudio_cameras_are_ours_turned_by_90_degrees():
    """threestudio feeds its z-up c2w, normalised, straight to MVDream: ours at azimuth a equals its a - 90."""
    for elevation, azimuth in ((0.0, 0.0), (20.0, 75.0), (30.0, -140.0)):
        ours = mvdream_camera_matrices(orbit_group(elevation, azimuth, num_views=1, distance=3.0).cameras)[0]
        c2w = _threestudio_c2w(elevation, azimuth - 90.0, 3.0)
        c2w[:3, 3] /= c2w[:3, 3].norm()
        torch.testing.assert_close(ours, c2w, rtol=0, atol=1e-5)


def test_sampled_groups_follow_mvdream_threestudio():
    cfg = MultiViewCameraConfig()
    for seed in range(12):
        views = sample_multiview_cameras(2, cfg, torch.Generator().manual_seed(seed))
        cams = views.cameras
        assert len(views) == 8 and views.matrices.shape == (8, 4, 4)
        for g in range(2):
            sl = slice(4 * g, 4 * g + 4)
            for field in (cams.polar_deg, cams.fov_y_deg, cams.radius):
                assert torch.allclose(field[sl], field[sl][0].expand(4))  # shared by the group
            steps = torch.remainder(torch.diff(cams.azimuth_deg[sl]), 360.0)
            torch.testing.assert_close(steps, torch.full((3,), 90.0), rtol=0, atol=1e-4)  # increasing, orthogonal
        elevation = 90.0 - cams.polar_deg
        assert ((elevation >= -1e-4) & (elevation <= 30.0 + 1e-4)).all()
        assert ((cams.fov_y_deg >= 15.0) & (cams.fov_y_deg <= 60.0)).all()
        relative = cams.radius * torch.tan(torch.deg2rad(cams.fov_y_deg) / 2)
        assert ((relative >= 0.8 - 1e-5) & (relative <= 1.0 + 1e-5)).all()
        torch.testing.assert_close(views.matrices, mvdream_camera_matrices(cams))
    a = sample_multiview_cameras(1, cfg, torch.Generator().manual_seed(3))
    b = sample_multiview_cameras(1, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a.matrices, b.matrices)


def test_elevation_modes_follow_threestudio():
    """Half the batches draw degrees uniformly in [0, 30]; the other half take threestudio's "uniform on the sphere"
    formula asin(2u - 1), u uniform in [(0 + 90) / 180, (30 + 90) / 180]: sin(e) uniform in [0, 1/3], so e stays
    below asin(1/3) = 19.47 deg (the range's top is mapped in degrees, not sine; kept as the method ran)."""
    deg = MultiViewCameraConfig(p_uniform_elevation=1.0)
    sphere = MultiViewCameraConfig(p_uniform_elevation=0.0)
    gen = torch.Generator().manual_seed(0)
    e_deg = 90.0 - sample_multiview_cameras(4000, deg, gen).cameras.polar_deg
    e_sph = 90.0 - sample_multiview_cameras(4000, sphere, gen).cameras.polar_deg
    assert abs(float(e_deg.mean()) - 15.0) < 0.3 and float(e_deg.max()) > 29.5
    assert float(e_sph.max()) <= math.degrees(math.asin(1 / 3)) + 1e-3
    assert abs(float(e_sph.mean()) - 9.641) < 0.2  # 3 (x asin x + sqrt(1 - x^2)) from 0 to 1/3, in degrees
    assert float(torch.sin(torch.deg2rad(e_sph)).mean()) == pytest.approx(1 / 6, abs=0.01)


@pytest.mark.parametrize(
    "kwargs",
    [{"elevation_range_deg": (30.0, 0.0)}, {"fov_range_deg": (0.0, 60.0)}, {"num_views": 0}, {"scene_radius": -1.0}],
)
def test_bad_config_is_refused(kwargs):
    with pytest.raises(ValueError, match="MultiViewCameraConfig: invalid"):
        MultiViewCameraConfig(**kwargs)
    with pytest.raises(ValueError, match="num_groups"):
        sample_multiview_cameras(0)
