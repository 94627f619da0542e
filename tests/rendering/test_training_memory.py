"""The two memory/time measures of training renders: field checkpointing and one knot blend per render.

Both must leave the gradients unchanged; the checkpointing must hold far fewer bytes (counted exactly by
benchmarks/accounting.py's LiveBytes, the tool the GPU estimate is built on); a dynamic render must blend the
T-knot table once, however many frames, chunks and normal probes it has.
"""

import sys
from dataclasses import replace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from a124_core.cameras import make_cameras
from a124_core.fields.encoding import GridConfig
from a124_core.fields.grid4d import Grid4DField
from a124_core.fields.grid_kernels import grid_path
from a124_core.fields.static import FieldConfig, StaticField
from a124_core.rendering.renderer import RenderConfig, render_cameras
from tests.paths import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from accounting import measure  # noqa: E402

GRID = GridConfig(num_levels=8, base_resolution=8, finest_resolution=128, log2_entries_per_level=14, init_scale=0.1)
FIELD = FieldConfig(grid=GRID, hidden_dim=32)


def make_dynamic(knots: int = 6) -> Grid4DField:
    torch.manual_seed(0)
    field = Grid4DField.from_static(StaticField(FIELD), knots)
    with torch.no_grad():  # knots that differ, so the time blend matters
        field.embeddings.add_(0.05 * torch.randn_like(field.embeddings))
    return field


def render_loss(field, config: RenderConfig, times=None, frames: int = 1, size: int = 16) -> torch.Tensor:
    cams = make_cameras(torch.full((frames,), 80.0), torch.linspace(-40, 40, frames), 1.8, 40.0)
    out = render_cameras(
        field,
        cams,
        size,
        size,
        times=times,
        config=config,
        shading="lambertian",
        light_dirs=torch.nn.functional.normalize(cams.positions, dim=-1),
        ambient=0.3,
        need_normals=True,
        perturb=True,
        generator=torch.Generator().manual_seed(1),
    )
    return out["rgb"].sum() + out["normal_image"].square().sum() + out["orientation"].sum() + out["opacity"].sum()


def grads(field, config, **kwargs) -> list[torch.Tensor]:
    field.zero_grad(set_to_none=True)
    render_loss(field, config, **kwargs).backward()
    return [p.grad.clone() for p in field.parameters()]


@pytest.mark.parametrize("dynamic", [False, True])
def test_field_checkpointing_leaves_gradients_unchanged(dynamic):
    torch.manual_seed(0)
    field = make_dynamic() if dynamic else StaticField(FIELD)
    kwargs = {"times": torch.tensor([0.1, 0.7]), "frames": 2} if dynamic else {}
    config = RenderConfig(num_samples=24, num_importance=8, chunk_rays=100)
    stored = grads(field, replace(config, checkpoint_field=False), **kwargs)
    recomputed = grads(field, replace(config, checkpoint_field=True), **kwargs)
    for a, b in zip(stored, recomputed):
        assert a.abs().sum() > 0
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_field_checkpointing_holds_a_fraction_of_the_bytes():
    """9 chunks of 64 rays: without checkpointing every chunk's field activations live until the backward. The
    composition (grid, then MLP) keeps [N, L, 8] corner tensors and the hidden layers (checkpointing: > 4x less);
    the fused grid + MLP op keeps only its points, so it holds less unchecked than the composition checkpointed
    (measured 8.1 vs 38.9 MB), and checkpointing still trims its activations (6.4 MB)."""
    torch.manual_seed(0)
    field = StaticField(FIELD)
    for p in field.parameters():
        p.grad = torch.zeros_like(p)  # as in training: only what the render adds is counted
    config = RenderConfig(num_samples=32, num_importance=16, chunk_rays=64)
    costs = {}
    for path in ("reference", "fused"):
        with grid_path(path):
            for on in (False, True):
                step = lambda on=on: render_loss(field, replace(config, checkpoint_field=on), size=24).backward()  # noqa: E731
                costs[path, on] = measure(step)
    assert costs["reference", True].peak_bytes < costs["reference", False].peak_bytes / 4, costs
    assert costs["fused", False].peak_bytes < costs["reference", True].peak_bytes / 3, costs
    assert costs["fused", True].peak_bytes < costs["fused", False].peak_bytes, costs
    # the recompute repeats the field's forward: more FLOPs, never fewer
    assert costs["reference", True].flops > costs["reference", False].flops


class KnotSelects(TorchDispatchMode):
    """Counts index_select calls that read from a table of `knots` rows (the T knots of a Grid4DField)."""

    def __init__(self, shape):
        super().__init__()
        self.shape, self.count = tuple(shape), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.index_select.default and tuple(args[0].shape) == self.shape:
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_dynamic_render_blends_the_knots_once_and_matches_per_call_blending():
    """In float64: the forward-difference normals divide density differences by eps, so float32 rounding (the
    fused op sums in another order than the composition) moves their gradients by up to 7 % of the largest."""
    field = make_dynamic().double()
    times = torch.tensor([0.0, 0.33, 0.9])
    config = RenderConfig(num_samples=16, num_importance=8, chunk_rays=50)  # 6 chunks per 16x16 frame
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the rays and cameras too
    try:
        _blend_once_and_per_point(field, times, config)
    finally:
        torch.set_default_dtype(default)


def _blend_once_and_per_point(field, times, config):
    with KnotSelects(field.embeddings.shape) as counter:
        batched = grads(field, config, times=times, frames=3)
    assert counter.count == 1

    # The same render through per-call blending (no frames_at: every point blends its own time): the same gradients.
    frames_at = Grid4DField.frames_at
    try:
        del Grid4DField.frames_at
        with KnotSelects(field.embeddings.shape) as counter:
            per_call = grads(field, config, times=times, frames=3)
    finally:
        Grid4DField.frames_at = frames_at
    assert counter.count == 0  # every point blends its own two knot rows: no table is blended at all
    for a, b in zip(batched, per_call):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * b.abs().max())


def test_frozen_frames_equal_the_field_at_their_time():
    field = make_dynamic()
    x = torch.rand(500, 3) * 2 - 1
    frames = field.at_times([0.25, 1.0])
    for frame, t in zip(frames, (0.25, 1.0)):
        d0, a0 = field(x, t)
        d1, a1 = frame(x)
        torch.testing.assert_close(d0, d1)
        torch.testing.assert_close(a0, a1)
        torch.testing.assert_close(frame.density(x), d0)
