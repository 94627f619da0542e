"""Inside/outside of a mesh: a voxel flood fill for fitting, exact generalized winding numbers for measuring.

trimesh's `contains` needs rtree or embree (neither installs here, nor is either a dependency of ComfyUI), and ray
parity breaks on overlapping parts (a point inside two closed parts is crossed an even number of times).
`voxel_inside` rasterises the surface into a shell of voxels, thickens it by `close_voxels`, floods the outside
from the border of the grid, and grows the outside back: cost O(faces + R^3), indifferent to overlapping parts,
self-intersections, non-manifold edges and face orientation, and it closes holes up to about 2 x close_voxels
voxels wide. A wider opening lets the flood in: the surface then stays as a one-voxel shell (right for a sheet or
a cup, hollow for a body with a missing patch). Shell voxels count as inside, which widens the object by under
one voxel (tested: every point the voxels add lies within 1.2 voxels of the surface); that errs toward keeping
thin parts, which would otherwise vanish from renders.
`winding_numbers` is the exact generalized winding number (Jacobson et al. 2013; solid angles by Van Oosterom and
Strackee), O(points x faces): the reference for the voxel occupancy and the fitted field on small meshes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor


def winding_numbers(points: Tensor, triangles: Tensor, chunk_pairs: int = 1 << 22) -> Tensor:
    """Generalized winding number [N] of points [N, 3] w.r.t. triangles [F, 3, 3] (1 inside a closed outward mesh)."""
    out = []
    step = max(1, chunk_pairs // max(1, triangles.shape[0]))
    for start in range(0, points.shape[0], step):
        rel = triangles[None] - points[start : start + step, None, None]  # [n, F, 3, 3]
        a, b, c = rel.unbind(2)
        la, lb, lc = a.norm(dim=-1), b.norm(dim=-1), c.norm(dim=-1)
        det = (a * torch.linalg.cross(b, c)).sum(-1)
        denom = la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb
        out.append(torch.atan2(det, denom).sum(-1) / (2 * math.pi))
    return torch.cat(out)


def voxel_centres(resolution: int, bound: float = 1.0, device: str | torch.device = "cpu") -> Tensor:
    """Centres [R, R, R, 3] of the voxel grid over [-bound, bound]^3, indexed [x, y, z]."""
    axis = (torch.arange(resolution, device=device, dtype=torch.float32) + 0.5) / resolution * 2 * bound - bound
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)


def _surface_lattice(triangles: Tensor, spacing: float, chunk_points: int = 1 << 22):
    """Yield chunks of points [n, 3] on every triangle, neighbours at most `spacing` apart (barycentric lattice)."""
    edges = (
        torch.stack(
            [triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 1], triangles[:, 0] - triangles[:, 2]],
            1,
        )
        .norm(dim=-1)
        .amax(1)
    )
    divisions = torch.ceil(edges / spacing).clamp_min(1).long()
    for n in torch.unique(divisions).tolist():
        i, j = torch.meshgrid(torch.arange(n + 1), torch.arange(n + 1), indexing="ij")
        keep = (i + j) <= n
        b1, b2 = i[keep].float() / n, j[keep].float() / n
        lattice = torch.stack([1 - b1 - b2, b1, b2], -1).to(triangles)  # [L, 3]
        group = triangles[divisions == n]
        per_chunk = max(1, chunk_points // lattice.shape[0])
        for start in range(0, group.shape[0], per_chunk):
            yield torch.einsum("lk,fkc->flc", lattice, group[start : start + per_chunk]).reshape(-1, 3)


def voxel_inside(
    triangles: Tensor, resolution: int = 128, bound: float = 1.0, close_voxels: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Inside mask [R, R, R] (indexed [x, y, z], voxel centres as `voxel_centres`) and the surface shell mask."""
    if resolution < 4:
        raise ValueError(f"resolution must be >= 4 voxels per axis, got {resolution}")
    if close_voxels < 0:
        raise ValueError(f"close_voxels must be >= 0, got {close_voxels}")
    voxel = 2 * bound / resolution
    shell = np.zeros((resolution,) * 3, dtype=bool)
    for points in _surface_lattice(triangles.float(), voxel / 2):
        ijk = ((points + bound) / voxel).floor().long().clamp(0, resolution - 1).cpu().numpy()
        shell[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = True
    cube = np.ones((3, 3, 3), dtype=bool)
    thick = ndimage.binary_dilation(shell, cube, iterations=close_voxels) if close_voxels else shell
    empty = np.pad(~thick, 1, constant_values=True)  # a border of empty voxels connects all of the outside
    labels, _ = ndimage.label(empty)
    outside = (labels == labels[0, 0, 0])[1:-1, 1:-1, 1:-1]
    if close_voxels:
        outside = ndimage.binary_dilation(outside, cube, iterations=close_voxels)
    return ~outside | shell, shell


def grid_volume(grid: Tensor) -> Tensor:
    """A [R, R, R] grid indexed [x, y, z] in grid_sample's layout [1, 1, z, y, x] (prepare once, sample often)."""
    return grid.float().permute(2, 1, 0)[None, None].contiguous()


def sample_volume(volume: Tensor, points: Tensor, bound: float = 1.0) -> Tensor:
    """Trilinear value [N] of a `grid_volume` at points [N, 3] (voxel-centred samples; 0 outside the bound)."""
    coords = (points / bound).reshape(1, -1, 1, 1, 3).to(volume)
    out = torch.nn.functional.grid_sample(volume, coords, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(-1)


def grid_lookup(grid: Tensor, points: Tensor, bound: float = 1.0) -> Tensor:
    """Trilinear value [N] of a [R, R, R] grid (indexed [x, y, z], voxel-centred) at points [N, 3]; 0 outside."""
    return sample_volume(grid_volume(grid), points, bound)


__all__ = ["grid_lookup", "grid_volume", "sample_volume", "voxel_centres", "voxel_inside", "winding_numbers"]
