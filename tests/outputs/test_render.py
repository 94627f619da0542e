import pytest
import torch

from a124_core.outputs.render import (
    OrbitConfig,
    orbit_grid_video,
    render_fixed_camera,
    render_orbit_animating,
    render_test_orbit,
)
from a124_core.rendering.renderer import RenderConfig

RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


class MarkerField:
    """Three coloured balls: red on +x, green on -x, blue on +z; with speed > 0 the red one rises over time."""

    is_dynamic = False

    def __init__(self, speed: float = 0.0):
        self.speed = speed
        self.is_dynamic = speed > 0

    def balls(self, t):
        lift = 0.0 if t is None else self.speed * float(t)
        return [((0.6, lift, 0.0), RED), ((-0.6, 0.0, 0.0), GREEN), ((0.0, 0.0, 0.6), BLUE)]

    def __call__(self, x, t=None):
        balls = self.balls(t)
        dist = torch.stack([(x - torch.tensor(centre)).norm(dim=-1) for centre, _ in balls], -1)  # [N, 3]
        density = (300 * torch.sigmoid((0.25 - dist) * 80.0)).sum(-1)
        albedo = torch.tensor([colour for _, colour in balls])[dist.argmin(-1)]  # colour of the nearest ball
        return density, albedo

    def density(self, x, t=None):
        return self(x, t)[0]


FAST = RenderConfig(num_samples=64, num_importance=0)


def colour_at(image, row, col):
    return image[row, col]


def dominant(pixel):
    return int(torch.argmax(pixel))


def test_orbit_views_in_order_and_handedness():
    orbit = render_test_orbit(MarkerField(), OrbitConfig(num_views=4, resolution=48), render_config=FAST)["albedo"]
    assert orbit.shape == (4, 1, 48, 48, 3)
    mid, left, right = 24, 3, 44  # side balls project ~22 px off centre
    v0, v1, v2, v3 = (orbit[i, 0] for i in range(4))
    # view 0 looks from +z: blue in the centre, red (+x) on the image's right, green (-x) on the left
    assert dominant(v0[mid, mid]) == 2 and dominant(v0[mid, right]) == 0 and dominant(v0[mid, left]) == 1
    # view 1 (azimuth 90) looks from +x: red in the centre, blue (+z) on the left
    assert dominant(v1[mid, mid]) == 0 and dominant(v1[mid, left]) == 2
    # view 2 looks from -z: green (-x) on the right, red on the left
    assert dominant(v2[mid, right]) == 1 and dominant(v2[mid, left]) == 0
    # view 3 looks from -x: green in the centre, blue (+z) on the right
    assert dominant(v3[mid, mid]) == 1 and dominant(v3[mid, right]) == 2


def test_dynamic_orbit_fixed_camera_and_animating_orbit_shapes_and_motion():
    field = MarkerField(speed=0.5)
    config = OrbitConfig(num_views=2, num_frames=3, resolution=32)
    orbit = render_test_orbit(
        field, config, channels=("albedo", "depth", "normal", "mask", "lambertian"), render_config=FAST
    )
    for channel, video in orbit.items():
        assert video.shape == (2, 3, 32, 32, 3), channel
        assert float(video.min()) >= 0 and float(video.max()) <= 1
    fixed = render_fixed_camera(field, config, render_config=FAST)["albedo"]
    assert fixed.shape == (3, 32, 32, 3)
    # the red ball rises: its rows move up the image between the first and the last frame
    red_rows = [((f[..., 0] > 0.8) & (f[..., 1] < 0.2)).nonzero()[:, 0].float().mean() for f in fixed]
    assert red_rows[2] < red_rows[0] - 2
    animating = render_orbit_animating(field, config, render_config=FAST)["albedo"]
    assert animating.shape == (3, 32, 32, 3)
    grid = orbit_grid_video(orbit["albedo"], columns=2)
    assert grid.shape == (3, 32, 64, 3)
    assert torch.equal(grid[:, :, 32:], orbit["albedo"][1])


def test_mask_and_depth_channels():
    maps = render_fixed_camera(
        MarkerField(), OrbitConfig(resolution=32), channels=("mask", "depth"), render_config=FAST
    )
    mask, depth = maps["mask"][0], maps["depth"][0]
    assert float(mask[16, 16, 0]) > 0.99 and float(mask[2, 2, 0]) < 0.01
    assert float(depth[2, 2, 0]) == 0.0  # background
    assert float(depth[16, 16, 0]) > float(depth[16, 26, 0])  # the blue ball (+z) is nearer than the red one


def test_bad_render_settings_raise():
    with pytest.raises(ValueError, match="resolution"):
        OrbitConfig(resolution=0)
    with pytest.raises(ValueError, match="channels"):
        render_test_orbit(MarkerField(), OrbitConfig(num_views=1, resolution=8), channels=("albedo", "heat"))
