"""Frames of a clip rendered in one call: the same maps and gradients as one render per frame, one set of host syncs.

render_cameras puts every frame's rays in one batch (each ray carries its frame's time, light and background);
Grid4DField.frames_at blends the frames' tables once and each point reads its frame's table.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from a124_core.cameras import make_cameras
from a124_core.fields.deformation import DeformationConfig, DeformationField
from a124_core.fields.encoding import GridConfig
from a124_core.fields.grid4d import Grid4DField
from a124_core.fields.grid_kernels import grid_path
from a124_core.fields.hash_encoding import HashGridConfig
from a124_core.fields.static import FieldConfig, StaticField
from a124_core.rendering.occupancy import OccupancyConfig, OccupancyGrid
from a124_core.rendering.renderer import RenderConfig, render_cameras

GRID = GridConfig(num_levels=6, base_resolution=8, finest_resolution=96, log2_entries_per_level=12, init_scale=0.1)
FIELD = FieldConfig(grid=GRID, hidden_dim=16)
TIMES = torch.tensor([0.1, 0.9, 0.45])


def dynamic(kind: str):
    torch.manual_seed(0)
    static = StaticField(FIELD)
    if kind == "grid4d":
        field = Grid4DField.from_static(static, 5)
        with torch.no_grad():
            field.embeddings.add_(0.05 * torch.randn_like(field.embeddings))
        return field
    grid = HashGridConfig(num_levels=4, base_resolution=4, finest_resolution=32, log2_hashmap_size=10)
    field = DeformationField.from_static(static, DeformationConfig(grid=grid, hidden_dim=16, num_hidden_layers=2))
    with torch.no_grad():
        field.mlp[-1].weight.normal_(0, 0.5)  # a displacement that moves with t
    return field


def render(field, cams, times, occupancy, light, background, **kwargs):
    field.zero_grad()
    config = RenderConfig(num_samples=24, num_importance=8)
    out = render_cameras(field, cams, 16, 16, times=times, config=config, occupancy=occupancy, shading="lambertian",
                         light_dirs=light, ambient=0.3, background=background, need_normals=True,
                         **kwargs)  # fmt: skip
    loss = out["rgb"].sum() + out["normal_image"].square().sum() + out["orientation"].sum() + out["depth"].sum()
    loss.backward()
    return {k: v.detach() for k, v in out.items()}, [p.grad.clone() for p in field.parameters() if p.grad is not None]


@pytest.mark.parametrize("kind, path", [("grid4d", "fused"), ("grid4d", "reference"), ("deformation", "fused")])
def test_one_call_for_all_frames_equals_one_call_per_frame(kind, path):
    field = dynamic(kind)
    occupancy = OccupancyGrid(OccupancyConfig(resolution=16), 3, 1.0)
    occupancy.refresh(lambda x, t: field.density(x, t), generator=torch.Generator().manual_seed(0))
    cams = make_cameras(torch.full((3,), 80.0), torch.tensor([-30.0, 20.0, 50.0]), 1.8, 40.0)
    light = torch.nn.functional.normalize(cams.positions, dim=-1)
    background = torch.rand(3, 3)
    with grid_path(path):
        together, grads = render(field, cams, TIMES, occupancy, light, background, need_displacement=kind != "grid4d")
        apart = [render(field, cams[b : b + 1], TIMES[b : b + 1], occupancy, light[b : b + 1], background[b : b + 1],
                        need_displacement=kind != "grid4d") for b in range(3)]  # fmt: skip
    for key, value in together.items():
        expected = torch.cat([maps[key] for maps, _ in apart])
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    summed = [sum(g) for g in zip(*(grad for _, grad in apart))]
    assert len(grads) == len(summed) and all(g.abs().sum() > 0 for g in grads)
    for got, want in zip(grads, summed):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6 * want.abs().max())


class Syncs(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func is torch.ops.aten.nonzero.default
        return func(*args, **(kwargs or {}))


def test_host_syncs_do_not_grow_with_the_frames():
    """The renderer's data-dependent steps (valid samples of the importance and main passes, samples that get
    normals) each sync once per call: 3 for a clip of 1 frame or of 4."""
    field = dynamic("grid4d")
    counts = []
    for frames in (1, 4):
        cams = make_cameras(torch.full((frames,), 80.0), torch.linspace(-40, 40, frames), 1.8, 40.0)
        light = torch.nn.functional.normalize(cams.positions, dim=-1)
        with Syncs() as syncs:
            render(field, cams, torch.linspace(0, 1, frames), None, light, None)
        counts.append(syncs.count)
    assert counts == [3, 3], counts
