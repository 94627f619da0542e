import pytest
import torch

from a124_core.cameras import reference_camera
from a124_core.fields.static import StaticField
from a124_core.rays import aabb_near_far, camera_rays
from a124_core.rendering.renderer import render_rays


def test_pixel_centre_rays_are_symmetric():
    rays = camera_rays(reference_camera(), 2, 2)
    d = rays.directions.reshape(2, 2, 3)
    assert torch.allclose(d[0, 0, :2], -d[1, 1, :2], atol=1e-6)
    assert torch.allclose(d[0, 1, 0], -d[0, 0, 0])
    # pixel centres: with an even size, no ray passes exactly through the optical axis
    assert (d[..., :2].abs() > 0).all()


def test_aabb_near_far_of_the_reference_ray():
    origin = torch.tensor([[0.0, 0.0, 1.8], [0.0, 0.0, 1.8], [0.0, 0.0, 0.5]])
    direction = torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    near, far = aabb_near_far(origin, direction)
    assert torch.allclose(near[0], torch.tensor(0.8)) and torch.allclose(far[0], torch.tensor(2.8))
    assert near[1] == far[1]  # misses the box
    assert torch.allclose(near[2], torch.tensor(0.2)), "near is clamped to min_near inside the box"


def test_empty_and_non_finite_rays_raise():
    rays = camera_rays(reference_camera(), 2, 2)
    field = StaticField()
    with pytest.raises(ValueError, match="empty"):
        render_rays(field, rays[0:0])
    rays.origins[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        render_rays(field, rays)
