"""Ground truth for the oracle priors: analytic sphere scenes ray-traced from cameras built here, independently.

The camera convention of SPEC 2 is written out again in this file (not imported from a124_core.cameras), so a
convention bug in the library cannot cancel itself out: position r (sin p sin a, cos p, sin p cos a), y up,
looking at the origin, image right = camera right, pixel centres, vertical FOV. The scenes are asymmetric
(red at +x, blue at -x and higher, green up and back): a mirrored or rotated view is wrong everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

Sphere = tuple[tuple[float, float, float], float, tuple[float, float, float]]  # centre, radius, colour
SceneAt = Callable[[float], Sequence[Sphere]]  # time in [0, 1] -> spheres

STILL: list[Sphere] = [
    ((0.30, 0.00, 0.05), 0.30, (0.90, 0.15, 0.10)),
    ((-0.28, 0.12, 0.10), 0.26, (0.15, 0.25, 0.90)),
    ((0.00, 0.36, -0.22), 0.20, (0.15, 0.80, 0.20)),
]


def still(t: float = 0.0) -> list[Sphere]:
    """The static scene (the reference image's object)."""
    return STILL


def moving(t: float) -> list[Sphere]:
    """The red sphere slides from +x toward the centre and the blue one rises as t goes 0 -> 1; equals `still`
    at t = 0 (the reference image is frame 0)."""
    (c0, r0, k0), (c1, r1, k1), green = STILL
    return [((c0[0] - 0.25 * t, c0[1], c0[2]), r0, k0), ((c1[0], c1[1] + 0.30 * t, c1[2]), r1, k1), green]


#: The appearance a refine stage's image-control oracle knows: the same spheres, other colours (what a tile model
#: adds is appearance; the layout of its control image, the coarse render, stays).
REFINED_COLOURS = [(0.95, 0.55, 0.15), (0.55, 0.20, 0.80), (0.10, 0.65, 0.60)]


def refined(t: float) -> list[Sphere]:
    """`moving` with the refined appearance: the geometry and motion of the coarse target, new colours."""
    return [(centre, radius, colour) for (centre, radius, _), colour in zip(moving(t), REFINED_COLOURS)]


def fast(t: float) -> list[Sphere]:
    """A large sphere crossing the front of the box quickly (x from -0.45 to +0.45), for occupancy time slots."""
    return [*STILL[1:], ((-0.45 + 0.9 * t, -0.30, 0.30), 0.25, (0.95, 0.75, 0.10))]


def camera_rays(polar_deg: float, azimuth_deg: float, height: int, width: int, radius: float = 1.8, fov_deg=40.0):
    """Origins [H*W, 3] and unit directions [H*W, 3] of a camera on the sphere looking at the origin (SPEC 2)."""
    p, a = math.radians(polar_deg), math.radians(azimuth_deg)
    eye = torch.tensor([math.sin(p) * math.sin(a), math.cos(p), math.sin(p) * math.cos(a)]) * radius
    forward = -eye / eye.norm()
    right = torch.linalg.cross(forward, torch.tensor([0.0, 1.0, 0.0]))
    right = right / right.norm()
    up = torch.linalg.cross(right, forward)
    focal = 0.5 * height / math.tan(math.radians(fov_deg) / 2)
    v, u = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    x, y = (u - width / 2) / focal, -(v - height / 2) / focal
    dirs = x.reshape(-1, 1) * right + y.reshape(-1, 1) * up + forward
    return eye.expand(height * width, 3), dirs / dirs.norm(dim=-1, keepdim=True)


def trace(
    spheres: Sequence[Sphere],
    polar_deg: float,
    azimuth_deg: float,
    height: int,
    width: int,
    radius: float = 1.8,
    fov_deg: float = 40.0,
) -> Tensor:
    """Albedo image [3, H, W] on white and its alpha [1, H, W] (hard edges, nearest hit wins)."""
    origins, dirs = camera_rays(polar_deg, azimuth_deg, height, width, radius, fov_deg)
    best = torch.full((origins.shape[0],), math.inf)
    colour = torch.ones(origins.shape[0], 3)
    for centre, radius, rgb in spheres:
        oc = origins - torch.tensor(centre)
        b = (oc * dirs).sum(-1)
        disc = b * b - ((oc * oc).sum(-1) - radius**2)
        hit_t = -b - disc.clamp_min(0).sqrt()
        closer = (disc > 0) & (hit_t > 0) & (hit_t < best)
        best = torch.where(closer, hit_t, best)
        colour[closer] = torch.tensor(rgb)
    alpha = torch.isfinite(best).float()
    return colour.T.reshape(3, height, width), alpha.reshape(1, height, width)


def image(
    scene: SceneAt,
    t: float,
    polar_deg: float,
    azimuth_deg: float,
    height: int,
    width: int,
    radius: float = 1.8,
    fov_deg: float = 40.0,
) -> Tensor:
    """The scene at time t seen from (polar, azimuth) at `radius` with a vertical `fov_deg`: [3, H, W] in [0, 1]."""
    return trace(scene(t), polar_deg, azimuth_deg, height, width, radius, fov_deg)[0]


def psnr(a: Tensor, b: Tensor) -> float:
    return float(-10 * torch.log10(((a - b) ** 2).mean().clamp_min(1e-12)))
