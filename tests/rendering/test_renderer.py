import pytest
import torch

import a124_core.rendering.renderer as renderer_module
from a124_core.cameras import make_cameras, reference_camera
from a124_core.rays import camera_rays
from a124_core.rendering.occupancy import OccupancyConfig, OccupancyGrid
from a124_core.rendering.renderer import RenderConfig, render_cameras, render_rays


class SphereField:
    """An analytic field: a dense sphere of radius r whose centre moves along +x with time."""

    def __init__(self, radius=0.5, colour=(0.8, 0.3, 0.1), speed=0.0, sharpness=60.0):
        self.radius, self.colour, self.speed, self.sharpness = radius, torch.tensor(colour), speed, sharpness

    def centre(self, t):
        t = 0.0 if t is None else float(t)
        return torch.tensor([self.speed * t, 0.0, 0.0])

    def density(self, x, t=None):
        d = (x - self.centre(t)).norm(dim=-1)
        return 200.0 * torch.sigmoid((self.radius - d) * self.sharpness)

    def __call__(self, x, t=None):
        return self.density(x, t), self.colour.expand(x.shape[0], 3)


RENDER = RenderConfig(num_samples=128, num_importance=64)


def test_dense_sphere_opacity_depth_and_colour():
    out = render_cameras(SphereField(), reference_camera(), 32, 32, config=RENDER)
    centre = (0, 16, 16)
    assert float(out["opacity"][centre]) > 0.99
    assert abs(float(out["depth"][centre]) - (1.8 - 0.5)) < 0.03
    assert torch.allclose(out["rgb"][centre], torch.tensor([0.8, 0.3, 0.1]), atol=0.02)
    corner = (0, 0, 0)
    assert float(out["opacity"][corner]) < 1e-3
    assert torch.allclose(out["rgb"][corner], torch.ones(3), atol=1e-3)  # white background by default


def test_background_colour_and_per_frame_backgrounds():
    bg = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    out = render_cameras(
        SphereField(), make_cameras(90.0, torch.tensor([0.0, 90.0])), 16, 16, config=RENDER, background=bg
    )
    assert torch.allclose(out["rgb"][0, 0, 0], bg[0], atol=1e-3) and torch.allclose(
        out["rgb"][1, 0, 0], bg[1], atol=1e-3
    )


def test_shading_modes():
    field, cam = SphereField(), reference_camera()
    light = torch.tensor([[0.0, 0.0, 1.0]])  # light from the camera
    albedo = render_cameras(field, cam, 16, 16, config=RENDER)["rgb"]
    lamb1 = render_cameras(field, cam, 16, 16, config=RENDER, shading="lambertian", light_dirs=light, ambient=1.0)[
        "rgb"
    ]
    assert torch.allclose(albedo, lamb1, atol=1e-4), "ambient 1 makes lambertian equal albedo"
    tl = render_cameras(field, cam, 16, 16, config=RENDER, shading="textureless", light_dirs=light, ambient=0.1)["rgb"]
    assert torch.allclose(tl[0, 8, 8], torch.ones(3), atol=0.03), "facing the light, textureless is white"
    normal = render_cameras(field, cam, 16, 16, config=RENDER, shading="normal")
    # normal shading of the sphere's centre pixel: n = (0, 0, 1) -> colour (0.5, 0.5, 1)
    assert torch.allclose(normal["rgb"][0, 8, 8], torch.tensor([0.5, 0.5, 1.0]), atol=0.05)
    n = normal["normal"][0, 8, 8]
    # pixel (8, 8) lies just right of and below the image centre: its normal leans to +x and -y
    assert float(n[2] / n.norm()) > 0.99 and float(n[0]) > 0 and float(n[1]) < 0
    assert float(normal["orientation"][0, 8, 8]) < 1e-3, "normals face the camera: no orientation penalty"
    with pytest.raises(ValueError, match="Unknown shading"):
        render_cameras(field, cam, 4, 4, shading="phong")


def test_chunked_rendering_is_exact_and_bounded(monkeypatch):
    field, cam = SphereField(), reference_camera()
    small = RenderConfig(num_samples=32, num_importance=16, chunk_rays=100)
    large = RenderConfig(num_samples=32, num_importance=16, chunk_rays=1 << 20)
    sizes = []
    original = renderer_module.render_rays

    def spy(field, rays, *args, **kwargs):
        sizes.append(len(rays))
        return original(field, rays, *args, **kwargs)

    monkeypatch.setattr(renderer_module, "render_rays", spy)
    a = render_cameras(field, cam, 40, 40, config=small)
    assert max(sizes) <= 100 and sum(sizes) == 1600
    b = render_cameras(field, cam, 40, 40, config=large)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_occupancy_grid_skips_empty_space_without_changing_the_image():
    field, cam = SphereField(), reference_camera()
    occupancy = OccupancyGrid(OccupancyConfig(resolution=32, threshold=10.0))
    occupancy.refresh(field.density, generator=torch.Generator().manual_seed(0))
    assert 0.01 < occupancy.occupancy_fraction() < 0.2
    plain = render_cameras(field, cam, 24, 24, config=RENDER)["rgb"]
    skipped = render_cameras(field, cam, 24, 24, config=RENDER, occupancy=occupancy)["rgb"]
    # only the soft tail below the density threshold is culled
    assert (plain - skipped).abs().max() < 0.05 and (plain - skipped).abs().mean() < 2e-3


def test_each_time_slot_is_refreshed_at_its_own_time():
    field = SphereField(radius=0.25, speed=0.6)
    # exactly at the slot times here (slot_span off); tests/rendering/test_occupancy_slots.py covers the spans
    occupancy = OccupancyGrid(OccupancyConfig(resolution=16, slot_span=False), time_slots=3)
    occupancy.refresh(field.density)
    for slot, t in enumerate((0.0, 0.5, 1.0)):
        centre = field.centre(t)[None]
        assert bool(occupancy.query(centre, t)[0]), f"slot {slot} must hold the sphere at t={t}"
    assert not bool(occupancy.query(field.centre(1.0)[None], 0.0)[0])
    assert not bool(occupancy.query(field.centre(0.0)[None], 1.0)[0])


def test_gradients_flow_to_field_parameters():
    from a124_core.fields.encoding import GridConfig
    from a124_core.fields.static import FieldConfig, StaticField

    field = StaticField(FieldConfig(grid=GridConfig(num_levels=4, finest_resolution=64, log2_entries_per_level=12)))
    rays = camera_rays(reference_camera(), 8, 8)
    out = render_rays(
        field,
        rays,
        config=RenderConfig(num_samples=16, num_importance=8),
        shading="lambertian",
        light_dir=torch.tensor([0.0, 0.0, 1.0]),
        ambient=0.3,
        need_normals=True,
    )
    (out["rgb"].mean() + out["orientation"].mean()).backward()
    assert field.encoder.embeddings.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in field.parameters())


def test_one_light_offset_per_step_shared_by_all_frames():
    from a124_core.cameras import static_camera_clip
    from a124_core.rendering.renderer import light_directions

    cams = static_camera_clip(4, generator=torch.Generator().manual_seed(0))
    lights = light_directions(cams, torch.Generator().manual_seed(1))
    assert torch.allclose(lights, lights[:1].expand_as(lights)), "a still camera must not strobe its light"
    assert torch.allclose(lights.norm(dim=-1), torch.ones(4))


def test_normal_image_is_the_detached_composite_of_shifted_normals():
    out = render_cameras(SphereField(), reference_camera(), 16, 16, config=RENDER, shading="normal")
    assert torch.allclose(out["normal_image"], out["rgb"] - (1 - out["opacity"]), atol=1e-5)
    assert float(out["normal_image"].min()) >= 0 and float(out["normal_image"].max()) <= 1


def test_forward_difference_normals_stay_within_their_documented_angle_of_central_ones():
    """RenderConfig.normal_differences 'forward' (3 probes) against the default central differences (6 probes) on
    a sharp sphere: 4 deg apart in the median, under 10 deg everywhere the sphere is seen (the docstring's numbers)."""
    field, cam = SphereField(), reference_camera()
    maps = {
        d: render_cameras(field, cam, 24, 24, config=RenderConfig(num_samples=128, num_importance=64,
                                                                  normal_differences=d), shading="normal")
        for d in ("forward", "central")
    }  # fmt: skip
    seen = maps["central"]["opacity"][..., 0] > 0.5
    a, b = (torch.nn.functional.normalize(maps[d]["normal"][seen], dim=-1) for d in ("forward", "central"))
    angles = torch.rad2deg(torch.arccos((a * b).sum(-1).clamp(-1, 1)))
    assert seen.sum() > 100 and float(angles.median()) < 5.0 and float(angles.max()) < 10.0, angles.max()
    with pytest.raises(ValueError, match="normal_differences"):
        RenderConfig(normal_differences="sobel")


class CountingField(SphereField):
    """SphereField that counts the points its density is evaluated at."""

    def __init__(self):
        super().__init__()
        self.points = 0

    def density(self, x, t=None):
        self.points += x.shape[0]
        return super().density(x, t)


def test_normals_only_for_samples_whose_weight_shows():
    """Skipping normals of samples with weight < normal_min_weight changes every output by at most the documented
    bound (samples per ray x the threshold) and saves most normal probes of an opaque object."""
    cam, light = reference_camera(), torch.tensor([[0.0, 0.6, 0.8]])
    outs, probes = {}, {}
    for threshold in (0.0, 1e-5):
        field = CountingField()
        config = RenderConfig(num_samples=128, num_importance=64, normal_min_weight=threshold)
        outs[threshold] = render_cameras(field, cam, 24, 24, config=config, shading="lambertian", light_dirs=light,
                                         ambient=0.2)  # fmt: skip
        probes[threshold] = field.points
    bound = 192 * 1e-5
    for key in ("rgb", "normal", "normal_image", "orientation"):
        assert (outs[0.0][key] - outs[1e-5][key]).abs().max() <= bound, key
    assert (outs[0.0]["rgb"] - outs[1e-5]["rgb"]).abs().max() > 0, "some samples must have been skipped"
    assert probes[1e-5] < 0.6 * probes[0.0], probes
    with pytest.raises(ValueError, match="normal_min_weight"):
        RenderConfig(normal_min_weight=-1.0)
