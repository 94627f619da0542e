"""Oracle fit of the deformation representation: a frozen canonical field of the t = 0 scene, warped by a
deformation field trained by L2 on exact renders of the moving spheres, must reproduce held-out times and views."""

import time

import pytest
import torch

from a124_core.fields.deformation import DeformationConfig, DeformationField
from a124_core.fields.encoding import GridConfig
from a124_core.fields.hash_encoding import HashGridConfig
from a124_core.fields.static import FieldConfig, StaticField
from a124_core.rendering.renderer import RenderConfig

from .analytic import fit_field, heldout_psnr, moving_spheres, ring_cameras

GRID = GridConfig(num_levels=8, base_resolution=8, finest_resolution=128, log2_entries_per_level=15)
RENDER = RenderConfig(num_samples=48, num_importance=0)
# A CPU-sized deformation grid; the schedule is compressed so every level is unmasked during the fit.
DEFORM = DeformationConfig(
    grid=HashGridConfig(num_levels=8, base_resolution=4, finest_resolution=64, log2_hashmap_size=15),
    start_levels=4,
    levels_every=100,
)
HELD_TIMES = [0.1, 0.45, 0.7, 0.95]


def fit_canonical(seed: int = 0) -> tuple[StaticField, float]:
    """The static field of the t = 0 scene (photometric fit, as the static stage's field would be)."""
    torch.manual_seed(seed)
    field = StaticField(FieldConfig(grid=GRID))
    cams = ring_cameras(96, seed=0)
    views = [(cams[i], None) for i in range(96)]
    occupancy = fit_field(field, views, moving_spheres(0.0), 64, 300, 2048, RENDER, lr_scale=3.0)
    value = heldout_psnr(field, ring_cameras(4, seed=99), None, moving_spheres(0.0), 64, RENDER, occupancy)
    return field, value


def fit_deformation(canonical: StaticField, steps: int = 600) -> tuple[DeformationField, float]:
    """Deformation trained at 9 times (16 views each), evaluated between them from unseen views."""
    field = DeformationField.from_static(canonical, DEFORM)
    train = ring_cameras(144, seed=1)
    times = [(i % 9) / 8 for i in range(144)]
    occupancy = fit_field(
        field,
        [(train[i], times[i]) for i in range(144)],
        moving_spheres,
        64,
        steps,
        2048,
        RENDER,
        lr_scale=10.0,
        time_slots=5,
        on_step=field.set_progress,
    )
    value = heldout_psnr(field, ring_cameras(4, seed=98), HELD_TIMES, moving_spheres, 64, RENDER, occupancy)
    return field, value


@pytest.mark.slow
def test_deformation_field_recovers_moving_spheres_at_heldout_times(one_thread):
    start = time.time()
    canonical, canonical_psnr = fit_canonical()
    field, value = fit_deformation(canonical)
    frozen = fit_canonical.__name__  # the canonical weights must not move
    assert all(not p.requires_grad for p in field.canonical.parameters()), frozen
    assert torch.equal(field.canonical.encoder.embeddings, canonical.encoder.embeddings)
    zero_motion = DeformationField.from_static(canonical, DEFORM)
    still = heldout_psnr(zero_motion, ring_cameras(4, seed=98), HELD_TIMES, moving_spheres, 64, RENDER, None)
    print(
        f"canonical {canonical_psnr:.2f} dB at t = 0; deformation {value:.2f} dB at held-out times/views "
        f"(no motion: {still:.2f} dB); {time.time() - start:.0f} s"
    )
    assert value >= 24.0
