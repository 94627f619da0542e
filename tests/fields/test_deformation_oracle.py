"""Oracle fit of the deformation representation: a frozen canonical field of the t = 0 scene, warped by a
deformation field trained by L2 on exact renders of the moving spheres, must reproduce held-out times and views.

Each step mixes rays of several (view, time) pairs, as a training step renders several frames of a clip: with one
time per step Adam averages the pulls of consecutive times and the field learns the mean motion first.
"""

import time

import pytest
import torch

from a124_core.fields.deformation import DeformationConfig, DeformationField
from a124_core.fields.encoding import GridConfig
from a124_core.fields.hash_encoding import HashGridConfig
from a124_core.fields.static import FieldConfig, StaticField
from a124_core.rays import camera_rays
from a124_core.rendering.renderer import RenderConfig, render_rays

from .analytic import fit_field, heldout_psnr, moving_spheres, ring_cameras, trace_spheres

GRID = GridConfig(num_levels=8, base_resolution=8, finest_resolution=128, log2_entries_per_level=15)
CANONICAL_RENDER = RenderConfig(num_samples=48, num_importance=0)
RENDER = RenderConfig(num_samples=32, num_importance=0)
STEPS = 150
RAYS = 128  # per (view, time) pair, 4 pairs a step
SIZE = 48  # canonical training and held-out image size
# Measured (one thread): canonical 22.76 dB at t = 0; no motion 15.25 dB; the fit 17.32 / 18.37 / 17.53 dB at
# held-out times and views for fit seeds 0 / 1 / 2 (18.12 at seed 0 before the packed compositing: the renders agree
# to 3e-7, but 150 Adam steps on random rays amplify rounding by ~1 dB). Rendered at the mirrored times 1 - t against
# the truth at t, the same fields score 2.92 / 2.99 dB less (seeds 0 / 2): a comparison within one trained field, so
# it does not move with the fit's noise. With the time input ignored (mutation: displacement always at t = 0.5) the
# PSNR alone does not tell (17.31 dB before the packed compositing) but the mirrored-time gap is exactly 0.
PSNR_MIN = 17.0
GAIN_MIN = 1.5
TIME_GAP_MIN = 1.5
# A CPU-sized deformation grid; the schedule is compressed so every level is unmasked during the fit.
DEFORM = DeformationConfig(
    grid=HashGridConfig(num_levels=6, base_resolution=4, finest_resolution=32, log2_hashmap_size=14),
    start_levels=3,
    levels_every=STEPS // 6,
)
TRAIN_TIMES = [k / 8 for k in range(9)]
HELD_TIMES = [0.1, 0.45, 0.7, 0.95]


def scene(t: float):
    """The moving spheres at half speed: red slides 0.15 along -x, blue rises 0.15 over t in [0, 1]."""
    return moving_spheres(0.5 * t)


def fit_canonical(seed: int = 0) -> tuple[StaticField, float]:
    """The static field of the t = 0 scene (photometric fit, as the static stage's field would be)."""
    torch.manual_seed(seed)
    field = StaticField(FieldConfig(grid=GRID))
    cams = ring_cameras(96, seed=0)
    views = [(cams[i], None) for i in range(96)]
    occupancy = fit_field(field, views, scene(0.0), SIZE, 150, 1024, CANONICAL_RENDER, lr_scale=3.0)
    return field, heldout_psnr(field, ring_cameras(4, seed=99), None, scene(0.0), SIZE, CANONICAL_RENDER, occupancy)


def fit_deformation(field: DeformationField, steps: int = STEPS, lr: float = 3e-3, seed: int = 0) -> None:
    """L2 on random rays of 4 (view, time) pairs per step; 72 training views at the 9 times TRAIN_TIMES."""
    gen = torch.Generator().manual_seed(seed)
    cams = ring_cameras(72, seed=1)
    data = []
    for i in range(72):
        rays = camera_rays(cams[i], 48, 48)
        t = TRAIN_TIMES[i % len(TRAIN_TIMES)]
        data.append((rays, trace_spheres(rays, scene(t)), t))
    groups = field.parameter_groups()
    for group in groups:
        group["lr"] = lr
    opt = torch.optim.Adam(groups, betas=(0.9, 0.99), eps=1e-15)
    for step in range(steps):
        field.set_progress(step)
        loss = 0.0
        for j in torch.randint(0, len(data), (4,), generator=gen).tolist():
            rays, target, t = data[j]
            idx = torch.randint(0, len(rays), (RAYS,), generator=gen)
            out = render_rays(field, rays[idx], t, RENDER, perturb=True, generator=gen)
            loss = loss + ((out["rgb"] - target[idx]) ** 2).mean() / 4
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def heldout(field) -> float:
    return heldout_psnr(field, ring_cameras(4, seed=98), HELD_TIMES, scene, SIZE, RENDER, None)


@pytest.mark.slow
def test_deformation_field_recovers_moving_spheres_at_heldout_times(one_thread):
    start = time.time()
    canonical, canonical_psnr = fit_canonical()
    torch.manual_seed(0)
    field = DeformationField.from_static(canonical, DEFORM)
    still = heldout(field)  # zero displacement: the t = 0 scene at every time
    fit_deformation(field)
    value = heldout(field)
    print(
        f"canonical {canonical_psnr:.2f} dB at t = 0; deformation {value:.2f} dB at held-out times and views "
        f"(no motion: {still:.2f} dB); {time.time() - start:.0f} s"
    )
    assert torch.equal(field.canonical.encoder.embeddings, canonical.encoder.embeddings)  # the canonical stays
    assert value >= PSNR_MIN and value >= still + GAIN_MIN
    # the motion runs forwards in time: the field at 1 - t is clearly worse than at t (0 dB if time were ignored)
    mirrored = heldout_psnr(field, ring_cameras(4, seed=98), [1 - t for t in HELD_TIMES], lambda u: scene(1 - u),
                            SIZE, RENDER, None)  # fmt: skip
    assert value >= mirrored + TIME_GAP_MIN, (value, mirrored)
