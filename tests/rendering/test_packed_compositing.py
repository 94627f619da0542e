"""The packed compositing (render weights of the valid samples only, a float64 per-ray exclusive scan) equals the
dense formulation it replaced: `volume.render_weights` over every [R, S] slot with the empty slots at density 0."""

import pytest
import torch
from torch import Tensor

import a124_core.rendering.renderer as renderer_module
from a124_core.rays import Rays, aabb_near_far
from a124_core.rendering.occupancy import OccupancyConfig, OccupancyGrid
from a124_core.rendering.renderer import RenderConfig, _Samples, render_rays
from a124_core.rendering.volume import deltas_of, render_weights


def dense_weights(samples: _Samples, density: Tensor, far: Tensor) -> Tensor:
    """The formulation before the packed scan, kept as the reference: every slot, the empty ones at density 0."""
    dense = render_weights(samples.scatter(density), deltas_of(samples.depths, far))
    return dense.reshape(-1).index_select(0, samples.flat_valid)


def random_samples(rays: int = 64, slots: int = 12, seed: int = 0) -> tuple[_Samples, torch.Tensor]:
    """Samples with every kind of ray: empty (0), one sample in the last slot (1), one in the middle (2), every slot
    (3), the last slot only invalid (4), the rest random; far beyond the last slot or (ray 5) before it."""
    gen = torch.Generator().manual_seed(seed)
    depths = torch.sort(torch.rand(rays, slots, generator=gen) * 3 + 0.5, -1).values
    far = depths[:, -1] + torch.rand(rays, generator=gen) * 0.2
    far[5] = depths[5, -1] - 0.1
    valid = torch.rand(rays, slots, generator=gen) < 0.4
    valid[0], valid[1], valid[2], valid[3], valid[4] = False, False, False, True, True
    valid[1, -1] = valid[2, slots // 2] = True
    valid[4, -1] = False
    flat_valid = valid.reshape(-1).nonzero().squeeze(-1)
    ray = torch.div(flat_valid, slots, rounding_mode="floor")
    depth = depths.reshape(-1).index_select(0, flat_valid)
    return _Samples(depths, flat_valid, torch.zeros(len(flat_valid), 3), ray, depth), far


def test_packed_weights_and_their_gradients_equal_the_dense_formulation():
    samples, far = random_samples()
    gen = torch.Generator().manual_seed(1)
    density = torch.rand(len(samples.flat_valid), generator=gen) * 8
    density[samples.ray == 3] = 1e4  # a fully opaque ray: everything behind its first sample has weight ~0
    upstream = torch.rand(len(density), generator=gen)
    got, want = [], []
    for formulation, out in ((samples.weights, got), (lambda d, f: dense_weights(samples, d, f), want)):
        d = density.clone().requires_grad_(True)
        weights = formulation(d, far)
        (weights * upstream).sum().backward()
        out += [weights.detach(), d.grad]
    torch.testing.assert_close(got[0], want[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-6)
    assert float(got[0][samples.ray == 1]) > 0, "a ray's one sample in the last slot reaches the ray's far distance"
    opaque = got[0][samples.ray == 3]
    assert float(opaque[0]) > 0.99 and float(opaque[1:].abs().max()) < 1e-6


def test_a_long_ray_keeps_its_transmittance_behind_millions_of_samples():
    """Rays behind ~2^22 others: the running sum reaches ~1e6 there, and a float32 one would lose the small per-ray
    sums (ulp(1e6) = 0.06); float64 keeps them."""
    rays, slots = 1 << 16, 64
    depths = torch.linspace(0.5, 3.0, slots).expand(rays, slots).contiguous()
    flat_valid = torch.arange(rays * slots)
    samples = _Samples(depths, flat_valid, torch.zeros(rays * slots, 3), flat_valid // slots, depths.reshape(-1))
    density = torch.full((rays * slots,), 10.0)
    density[-slots:] = 1e-3  # the last ray is nearly transparent: its transmittance stays ~1
    far = torch.full((rays,), 3.1)
    weights = samples.weights(density, far)
    torch.testing.assert_close(weights[-slots:], dense_weights(samples, density, far)[-slots:], rtol=1e-5, atol=0)


class AffineField(torch.nn.Module):
    """Density softplus(a . x + b t + c) and colour sigmoid(W x): learnable, with gradients w.r.t. both; a
    displacement for need_displacement."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(2)
        self.a = torch.nn.Parameter(torch.randn(3, generator=gen) * 4)
        self.b = torch.nn.Parameter(torch.tensor([3.0]))
        self.c = torch.nn.Parameter(torch.tensor([2.0]))
        self.w = torch.nn.Parameter(torch.randn(3, 3, generator=gen))

    def _t(self, x, t):
        return torch.as_tensor(0.0 if t is None else t, dtype=x.dtype).expand(x.shape[0])

    def density(self, x, t=None):
        return 30 * torch.nn.functional.softplus(x @ self.a + self.b * self._t(x, t) + self.c - 4)

    def forward(self, x, t=None):
        return self.density(x, t), torch.sigmoid(x @ self.w)

    def forward_with_displacement(self, x, t=None):
        density, colour = self(x, t)
        return density, colour, x * self._t(x, t)[:, None]


def scene_rays(count: int = 300) -> tuple[Rays, torch.Tensor]:
    """Rays into the box from random directions, some missing it (far == near), per-ray times of three frames."""
    gen = torch.Generator().manual_seed(3)
    origins = torch.nn.functional.normalize(torch.randn(count, 3, generator=gen), dim=-1) * 2.5
    directions = torch.nn.functional.normalize(-origins + torch.randn(count, 3, generator=gen) * 0.6, dim=-1)
    near, far = aabb_near_far(origins, directions)
    times = torch.tensor([0.1, 0.5, 0.9]).repeat_interleave(count // 3)
    return Rays(origins, directions, near, far), times


def render_both(monkeypatch, occupancy, **kwargs) -> tuple[dict, dict]:
    """render_rays with the packed weights and with the dense reference formulation: maps and parameter gradients."""
    rays, times = scene_rays()
    assert (rays.far <= rays.near).any(), "some rays must miss the box"
    field = AffineField()
    config = RenderConfig(num_samples=24, num_importance=12, normal_min_weight=0.0)
    results = []
    for dense in (False, True):
        if dense:
            monkeypatch.setattr(_Samples, "weights", dense_weights)
        field.zero_grad()
        out = render_rays(field, rays, times, config, occupancy, need_normals=True, need_displacement=True, **kwargs)
        loss = sum((value * torch.linspace(0.5, 1.5, value.numel()).reshape(value.shape)).sum() for value in
                   out.values())  # fmt: skip
        loss.backward()
        grads = {name: p.grad.clone() for name, p in field.named_parameters()}
        results.append(({k: v.detach() for k, v in out.items()}, grads))
    return results[0], results[1]


@pytest.mark.parametrize("occupied", [False, True])
def test_render_rays_maps_and_gradients_equal_the_dense_formulation(monkeypatch, occupied):
    occupancy = None
    if occupied:  # culled slots: rays with no or few valid samples among full ones
        occupancy = OccupancyGrid(OccupancyConfig(resolution=8, threshold=20.0), time_slots=3)
        occupancy.refresh(AffineField().density, generator=torch.Generator().manual_seed(4))
        assert 0.05 < occupancy.occupancy_fraction() < 0.9
    (packed, packed_grads), (dense, dense_grads) = render_both(monkeypatch, occupancy)
    assert set(packed) == set(dense) >= {"rgb", "opacity", "depth", "normal", "orientation", "displacement"}
    assert "weights" not in packed, "the dense weights map is only made on request"
    assert float(packed["opacity"].max()) > 0.99 and float(packed["opacity"].min()) == 0.0
    for key in packed:
        torch.testing.assert_close(packed[key], dense[key], rtol=1e-5, atol=1e-5, msg=key)
    for name in packed_grads:
        assert packed_grads[name].abs().sum() > 0, name
        torch.testing.assert_close(packed_grads[name], dense_grads[name], rtol=1e-4, atol=1e-4, msg=name)


def test_dense_weights_on_request(monkeypatch):
    rays, times = scene_rays()
    field, config = AffineField(), RenderConfig(num_samples=24, num_importance=12)
    seen = {}
    original = renderer_module._composite

    def spy(samples, weights, *args):
        seen.update(samples=samples, weights=weights.detach())
        return original(samples, weights, *args)

    monkeypatch.setattr(renderer_module, "_composite", spy)
    with torch.no_grad():
        out = render_rays(field, rays, times, config, need_weights=True)
    assert out["weights"].shape == seen["samples"].depths.shape
    torch.testing.assert_close(out["weights"], seen["samples"].scatter(seen["weights"]))
    torch.testing.assert_close(out["weights"].sum(-1), out["opacity"])
    missed = rays.far <= rays.near
    assert float(out["weights"][missed].abs().max()) == 0.0
    with torch.no_grad():
        empty = render_rays(field, rays[missed.nonzero().squeeze(-1)], times[missed], config, need_weights=True)
    assert empty["weights"].shape[0] == int(missed.sum()) and float(empty["weights"].abs().max()) == 0.0


def dense_query(occupancy: OccupancyGrid, x: Tensor, t: Tensor) -> Tensor:
    """The occupancy test as before: an int64 cell index and time slot per point x [N, 3], t [N]."""
    r = occupancy.config.resolution
    ijk = ((x + occupancy.bound) / (2 * occupancy.bound) * r).long().clamp(0, r - 1)
    slot = torch.round(t.clamp(0, 1) * (occupancy.time_slots - 1)).long()
    return occupancy.occupied.reshape(-1)[slot * occupancy.occupied.shape[1] + ijk[:, 0] * r * r + ijk[:, 1] * r
                                          + ijk[:, 2]]  # fmt: skip


def dense_march(rays: Rays, depths: Tensor, times: Tensor, occupancy: OccupancyGrid) -> tuple[Tensor, Tensor]:
    """The valid samples as found before: every slot's point, the occupancy of each at its own (per-point) time."""
    points = rays.origins[:, None] + rays.directions[:, None] * depths[..., None]
    point_times = times[:, None].expand(depths.shape).reshape(-1)
    occupied = dense_query(occupancy, points.reshape(-1, 3), point_times).reshape(depths.shape)
    valid = (rays.far > rays.near)[:, None] & occupied
    flat_valid = valid.reshape(-1).nonzero().squeeze(-1)
    return flat_valid, points.reshape(-1, 3).index_select(0, flat_valid)


@pytest.mark.parametrize("one_time", [False, True])
def test_march_finds_the_same_samples_and_points_bitwise(one_time):
    """Each depth's occupancy is queried once (the stratified ones' for both passes, the sorted slots carry theirs),
    its time slot found per ray, and the points are computed for the valid samples only: the samples and points are
    the dense march's exactly."""
    rays, times = scene_rays()
    field = AffineField()
    occupancy = OccupancyGrid(OccupancyConfig(resolution=8, threshold=20.0), time_slots=3)
    occupancy.refresh(field.density, generator=torch.Generator().manual_seed(4))
    config = RenderConfig(num_samples=24, num_importance=12)
    t = 0.9 if one_time else times
    with torch.no_grad():
        samples = renderer_module._march(field, rays, t, config, occupancy, True, torch.Generator().manual_seed(5))
    flat_valid, x = dense_march(rays, samples.depths, torch.full_like(times, 0.9) if one_time else times, occupancy)
    assert 0.1 * samples.depths.numel() < len(flat_valid) < 0.9 * samples.depths.numel()
    assert torch.equal(samples.flat_valid, flat_valid)
    assert torch.equal(samples.x, x)
    assert torch.equal(samples.depth, samples.depths.reshape(-1)[flat_valid])
