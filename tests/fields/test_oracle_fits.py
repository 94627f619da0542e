"""Oracle fits: fields trained by L2 on exact renders of analytic scenes must reach a PSNR on held-out data."""

import time

import torch

from a124_core.fields.encoding import GridConfig
from a124_core.fields.grid4d import Grid4DConfig, Grid4DField
from a124_core.fields.static import FieldConfig, StaticField
from a124_core.rendering.renderer import RenderConfig

from .analytic import SPHERES, fit_field, heldout_psnr, moving_spheres, ring_cameras

# A CPU-sized grid: the test is about the encoder/field/renderer being able to represent and learn a scene.
GRID = GridConfig(num_levels=8, base_resolution=8, finest_resolution=128, log2_entries_per_level=15)
RENDER = RenderConfig(num_samples=48, num_importance=0)


def test_static_field_fits_spheres_on_heldout_views():
    torch.manual_seed(0)
    field = StaticField(FieldConfig(grid=GRID))
    train = ring_cameras(96, seed=0)
    start = time.time()
    occupancy = fit_field(field, [(train[i], None) for i in range(96)], SPHERES, 64, 300, 2048, RENDER, lr_scale=3.0)
    value = heldout_psnr(field, ring_cameras(4, seed=99), None, SPHERES, 64, RENDER, occupancy)
    print(f"StaticField held-out PSNR {value:.2f} dB after 300 steps ({time.time() - start:.0f} s)")
    assert value >= 25.0


def test_grid4d_field_fits_moving_spheres_at_heldout_times():
    """Trained at the 9 knot times (16 views each); evaluated at times between knots from unseen views."""
    torch.manual_seed(0)
    knots = 9
    field = Grid4DField(Grid4DConfig(FieldConfig(grid=GRID), num_knots=knots))
    train = ring_cameras(144, seed=1)
    times = [(i % knots) / (knots - 1) for i in range(144)]
    start = time.time()
    occupancy = fit_field(
        field,
        [(train[i], times[i]) for i in range(144)],
        moving_spheres,
        64,
        800,
        2048,
        RENDER,
        lr_scale=3.0,
        time_slots=5,
    )
    held_times = [0.1, 0.45, 0.7, 0.95]
    value = heldout_psnr(field, ring_cameras(4, seed=98), held_times, moving_spheres, 64, RENDER, occupancy)
    print(f"Grid4DField held-out PSNR {value:.2f} dB at unseen times and views ({time.time() - start:.0f} s)")
    assert value >= 24.0
