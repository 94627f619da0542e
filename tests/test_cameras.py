import math

import pytest
import torch

from a124_core.cameras import (
    CameraConfig,
    angle_from_reference_deg,
    make_cameras,
    orbit_cameras,
    reference_camera,
    sample_dynamic_cameras,
    sample_static_cameras,
)
from a124_core.rays import camera_rays


def assert_proper_rotations(c2w: torch.Tensor) -> None:
    rot = c2w[:, :3, :3]
    eye = torch.eye(3).expand_as(rot)
    assert torch.allclose(rot.transpose(1, 2) @ rot, eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(len(rot)), atol=1e-5)


def test_reference_camera_sits_on_plus_z_looking_at_origin():
    cam = reference_camera()
    assert torch.allclose(cam.positions[0], torch.tensor([0.0, 0.0, 1.8]), atol=1e-6)
    forward = -cam.c2w[0, :3, 2]
    assert torch.allclose(forward, torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)
    assert float(cam.fov_y_deg[0]) == 40.0
    assert_proper_rotations(cam.c2w)


def test_every_sampled_pose_is_a_proper_rotation_looking_at_origin():
    g = torch.Generator().manual_seed(0)
    cams = [sample_static_cameras(500, generator=g), sample_dynamic_cameras(16, generator=g), orbit_cameras(7)]
    for cam in cams:
        assert_proper_rotations(cam.c2w)
        forward = -cam.c2w[:, :3, 2]
        to_origin = torch.nn.functional.normalize(-cam.positions, dim=-1)
        assert torch.allclose(forward, to_origin, atol=1e-5)
        assert torch.allclose(cam.positions.norm(dim=-1), torch.full((len(cam),), 1.8), atol=1e-5)


def test_image_right_side_shows_world_plus_x_from_reference_view():
    cam = reference_camera()
    rays = camera_rays(cam, 8, 8)
    dirs = rays.directions.reshape(8, 8, 3)
    assert (dirs[:, -1, 0] > 0).all() and (dirs[:, 0, 0] < 0).all()  # right column looks toward +x
    assert (dirs[0, :, 1] > 0).all() and (dirs[-1, :, 1] < 0).all()  # top row looks up (+y)
    # Project the world point (+0.5, 0, 0) into the image: it lands right of centre.
    w2c = torch.linalg.inv(cam.c2w[0])
    p = w2c @ torch.tensor([0.5, 0.0, 0.0, 1.0])
    focal = float(cam.focal_px(8)[0])
    u = 4 + focal * p[0] / -p[2]
    assert u > 4


def test_orbit_covers_azimuths_in_order():
    n = 10
    cams = orbit_cameras(n)
    pos = cams.positions
    az = torch.rad2deg(torch.atan2(pos[:, 0], pos[:, 2]))
    unwrapped = torch.remainder(az, 360.0)
    unwrapped[0] = 0.0 if abs(unwrapped[0] - 360) < 1e-3 else unwrapped[0]
    assert torch.allclose(unwrapped, torch.arange(n) * 36.0, atol=1e-3)
    # second view is 36 deg to the camera's right: toward +x
    assert pos[1, 0] > 0


def test_static_sampler_distribution():
    g = torch.Generator().manual_seed(1)
    cams = sample_static_cameras(20000, generator=g)
    polar = cams.polar_deg
    upper = polar < 45
    assert float(polar.min()) >= 0.0 and float(polar.max()) <= 135.0 + 1e-4
    # upper-hemisphere directions are uniform: P(polar < 45) = 0.5 * (1 - cos 45)
    expected = 0.5 * (1 - math.cos(math.radians(45)))
    assert abs(float(upper.float().mean()) - expected) < 0.015
    assert abs(float(cams.azimuth_deg.mean())) < 5.0


def test_dynamic_camera_moves_linearly_within_bounds():
    g = torch.Generator().manual_seed(2)
    for _ in range(50):
        cams = sample_dynamic_cameras(16, generator=g)
        d_az = torch.remainder(cams.azimuth_deg[1:] - cams.azimuth_deg[:-1] + 180, 360) - 180
        assert torch.allclose(d_az, d_az[:1].expand_as(d_az), atol=1e-3)  # constant step per frame
        assert float(d_az.abs().max()) * 16 <= 90.0 + 1e-3
        assert float((cams.polar_deg[-1] - cams.polar_deg[0]).abs()) <= 45.0


def test_angle_from_reference():
    cams = make_cameras(torch.tensor([90.0, 90.0, 0.0]), torch.tensor([0.0, 90.0, 0.0]))
    assert torch.allclose(angle_from_reference_deg(cams), torch.tensor([0.0, 90.0, 90.0]), atol=1e-2)


@pytest.mark.parametrize(
    "kwargs",
    [dict(radius=0.0), dict(radius=-1.0), dict(fov_y_deg=0.0), dict(fov_y_deg=180.0), dict(polar_deg=float("nan"))],
)
def test_bad_camera_parameters_raise(kwargs):
    args = dict(polar_deg=90.0, azimuth_deg=0.0, radius=1.8, fov_y_deg=40.0)
    args.update(kwargs)
    with pytest.raises(ValueError):
        make_cameras(**args)


def test_camera_config_defaults_follow_spec():
    c = CameraConfig()
    assert (c.radius, c.fov_y_deg, c.p_upper_hemisphere, c.polar_range_deg) == (1.8, 40.0, 0.5, (45.0, 135.0))
    assert (c.dynamic_delta_polar_deg, c.dynamic_delta_azimuth_deg) == (45.0, 90.0)
