"""Rays through pixel centres and their entry/exit distances in the scene box (SPEC 4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .cameras import Cameras


@dataclass
class Rays:
    """A flat batch of N rays (directions unit length)."""

    origins: Tensor  # [N, 3]
    directions: Tensor  # [N, 3]
    near: Tensor  # [N]
    far: Tensor  # [N]; far == near for rays that miss the box

    def __len__(self) -> int:
        return int(self.origins.shape[0])

    def __getitem__(self, index: slice | Tensor) -> Rays:
        return Rays(self.origins[index], self.directions[index], self.near[index], self.far[index])


def pixel_directions_camera(height: int, width: int, focal_px: Tensor) -> Tensor:  # [B, H, W, 3]
    """Unit directions in camera axes (x right, y up, looking down -z) through pixel centres; row 0 is the top."""
    if height < 1 or width < 1:
        raise ValueError(f"Image size must be positive, got {height}x{width}")
    device = focal_px.device
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32) + 0.5,
        torch.arange(width, device=device, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    f = focal_px.float().view(-1, 1, 1)
    x = (u - width / 2) / f
    y = -(v - height / 2) / f
    z = -torch.ones_like(x)
    return torch.nn.functional.normalize(torch.stack([x, y, z], dim=-1), dim=-1)


def aabb_near_far(
    origins: Tensor, directions: Tensor, bound: float = 1.0, min_near: float = 0.2
) -> tuple[Tensor, Tensor]:
    """Slab intersection with [-bound, bound]^3; near is at least `min_near`; misses get far == near."""
    safe = torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t0 = (-bound - origins) / safe
    t1 = (bound - origins) / safe
    near = torch.minimum(t0, t1).amax(-1).clamp_min(min_near)
    far = torch.maximum(t0, t1).amin(-1)
    far = torch.maximum(far, near)
    return near, far


def camera_rays(cameras: Cameras, height: int, width: int, bound: float = 1.0, min_near: float = 0.2) -> Rays:
    """Rays of every pixel of every camera, flattened as [B * H * W] in row-major order per camera."""
    dirs_cam = pixel_directions_camera(height, width, cameras.focal_px(height).to(cameras.c2w.device))
    rot = cameras.c2w[:, :3, :3]
    dirs = torch.einsum("bij,bhwj->bhwi", rot, dirs_cam.to(rot.dtype)).reshape(-1, 3)
    origins = cameras.c2w[:, None, :3, 3].expand(-1, height * width, -1).reshape(-1, 3)
    near, far = aabb_near_far(origins, dirs, bound, min_near)
    return Rays(origins, dirs, near, far)
