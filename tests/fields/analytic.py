"""Analytic scenes rendered exactly by ray-sphere intersection, and a small L2 fit loop for field oracles."""

from __future__ import annotations

import math

import torch

from a124_core.cameras import Cameras, make_cameras
from a124_core.rays import Rays, camera_rays
from a124_core.rendering.occupancy import OccupancyConfig, OccupancyGrid
from a124_core.rendering.renderer import RenderConfig, render_cameras, render_rays

SPHERES = [  # centre, radius, colour
    ((0.30, 0.00, 0.00), 0.35, (0.9, 0.1, 0.1)),
    ((-0.30, 0.10, 0.10), 0.30, (0.1, 0.2, 0.9)),
    ((0.00, 0.35, -0.20), 0.22, (0.1, 0.8, 0.2)),
]


def moving_spheres(t: float):
    """The sphere scene with the red sphere sliding along x and the blue one rising over time."""
    (c0, r0, col0), (c1, r1, col1), rest = SPHERES[0], SPHERES[1], SPHERES[2:]
    return [((c0[0] - 0.3 * t, c0[1], c0[2]), r0, col0), ((c1[0], c1[1] + 0.3 * t, c1[2]), r1, col1), *rest]


def trace_spheres(rays: Rays, spheres) -> torch.Tensor:  # [N, 3], white background
    best = torch.full((len(rays),), math.inf)
    colour = torch.ones(len(rays), 3)
    for centre, radius, rgb in spheres:
        oc = rays.origins - torch.tensor(centre)
        b = (oc * rays.directions).sum(-1)
        c = (oc * oc).sum(-1) - radius**2
        disc = b * b - c
        hit = disc > 0
        t = -b - disc.clamp_min(0).sqrt()
        closer = hit & (t > 0) & (t < best)
        best = torch.where(closer, t, best)
        colour[closer] = torch.tensor(rgb)
    return colour


def ring_cameras(n: int, seed: int) -> Cameras:
    g = torch.Generator().manual_seed(seed)
    polar = 60 + 60 * torch.rand(n, generator=g)
    azimuth = torch.rand(n, generator=g) * 360 - 180
    return make_cameras(polar, azimuth)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


def fit_field(
    field,
    views: list[tuple[Cameras, float | None]],
    scene_fn,
    size: int,
    steps: int,
    rays_per_step: int,
    render: RenderConfig,
    lr_scale: float = 1.0,
    occupancy_res: int = 32,
    seed: int = 0,
    time_slots: int = 1,
    on_step=None,
):
    """Fit `field` to analytic renders of (camera, time) views by L2 on random rays; returns the occupancy grid.

    on_step(step) runs before each step (e.g. a deformation field's level unmasking).
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    data = []
    for cams, t in views:
        rays = camera_rays(cams, size, size)
        data.append((rays, trace_spheres(rays, scene_fn(t) if t is not None else scene_fn), t))
    occupancy = OccupancyGrid(OccupancyConfig(resolution=occupancy_res), time_slots=time_slots)
    groups = field.parameter_groups()
    for g in groups:
        g["lr"] *= lr_scale
    opt = torch.optim.Adam(groups, betas=(0.9, 0.99), eps=1e-15)
    for step in range(steps):
        if on_step is not None:
            on_step(step)
        rays, target, t = data[step % len(data)]
        idx = torch.randint(0, len(rays), (rays_per_step,), generator=gen)
        out = render_rays(field, rays[idx], t, render, occupancy if step >= 32 else None, perturb=True, generator=gen)
        loss = ((out["rgb"] - target[idx]) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 16 == 15:
            occupancy.refresh(lambda x, tt: field.density(x, tt), generator=gen)
    return occupancy


@torch.no_grad()
def heldout_psnr(field, cams: Cameras, times, scene_fn, size: int, render: RenderConfig, occupancy) -> float:
    values = []
    for i in range(len(cams)):
        t = None if times is None else times[i]
        pred = render_cameras(field, cams[i], size, size, None if t is None else [t], render, occupancy)["rgb"][0]
        rays = camera_rays(cams[i], size, size)
        gt = trace_spheres(rays, scene_fn(t) if t is not None else scene_fn).reshape(size, size, 3)
        values.append(psnr(pred, gt))
    return sum(values) / len(values)
