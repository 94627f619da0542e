"""Exact renders of a mesh with the scene's cameras: the ground truth the fitted field is measured against, and the
images of the mesh the dynamic stages can condition on (e.g. the front view for Zero123).

A rasteriser in plain torch, for any mesh size and no GPU library: each triangle's projected bounding box lists
its candidate pixels, the pixel-centre ray of the field renderer (`camera_rays`) is intersected with the triangle
(Moller-Trumbore, two-sided: meshes are often inconsistently oriented), and the nearest hit per pixel wins
(scatter-min over the candidates). Work is proportional to the pixels the triangles cover, not pixels x faces.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cameras import Cameras
from ..rays import camera_rays
from .surface import MeshSurface

_EDGE_TOLERANCE = 1e-6  # barycentric slack: a ray through a shared edge hits both triangles (no cracks)


def intersect(origins: Tensor, directions: Tensor, triangles: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Moller-Trumbore for N ray/triangle pairs: origins, directions [N, 3], triangles [N, 3, 3].

    Returns distance t [N] (inf where missed), barycentrics [N, 3] and the hit mask [N].
    """
    v0, e1, e2 = triangles[:, 0], triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]
    p = torch.linalg.cross(directions, e2)
    det = (e1 * p).sum(-1)
    ok = det.abs() > 1e-12
    inv = 1.0 / torch.where(ok, det, torch.ones_like(det))
    s = origins - v0
    b1 = (s * p).sum(-1) * inv
    q = torch.linalg.cross(s, e1)
    b2 = (directions * q).sum(-1) * inv
    t = (e2 * q).sum(-1) * inv
    tol = _EDGE_TOLERANCE
    hit = ok & (b1 >= -tol) & (b2 >= -tol) & (b1 + b2 <= 1 + tol) & (t > 0)
    bary = torch.stack([1 - b1 - b2, b1, b2], -1)
    return torch.where(hit, t, torch.full_like(t, float("inf"))), bary, hit


def _pixel_boxes(surface: MeshSurface, c2w: Tensor, focal: Tensor, height: int, width: int) -> Tensor:
    """Per triangle the inclusive pixel ranges [F, 4] = (col0, col1, row0, row1) its projection may cover."""
    rel = surface.vertices - c2w[:3, 3]
    cam = rel @ c2w[:3, :3]  # camera axes: x right, y up, z back (the camera looks down -z)
    depth = -cam[:, 2]
    safe = depth.clamp_min(1e-6)
    u = width / 2 + focal * cam[:, 0] / safe
    v = height / 2 - focal * cam[:, 1] / safe
    uf, vf = u[surface.faces], v[surface.faces]  # [F, 3]
    eps = 1e-3
    col0 = torch.ceil(uf.amin(1) - 0.5 - eps).clamp(0, width - 1)
    col1 = torch.floor(uf.amax(1) - 0.5 + eps).clamp(-1, width - 1)
    row0 = torch.ceil(vf.amin(1) - 0.5 - eps).clamp(0, height - 1)
    row1 = torch.floor(vf.amax(1) - 0.5 + eps).clamp(-1, height - 1)
    behind = (depth[surface.faces] <= 1e-6).any(1)  # projection undefined: test every pixel
    full = torch.tensor([0.0, width - 1, 0.0, height - 1], device=uf.device)
    boxes = torch.stack([col0, col1, row0, row1], 1)
    return torch.where(behind[:, None], full, boxes).long()


@torch.no_grad()
def rasterise(
    surface: MeshSurface, cameras: Cameras, height: int, width: int, max_pairs: int = 1 << 20
) -> tuple[Tensor, Tensor, Tensor]:
    """Nearest triangle per pixel: face [B, H, W] (-1 = background), distance [B, H, W], barycentrics [B, H, W, 3]."""
    if height < 1 or width < 1:
        raise ValueError(f"Resolution must be positive, got {height}x{width}")
    device = surface.vertices.device
    triangles = surface.triangles
    faces_out, depth_out, bary_out = [], [], []
    for b in range(len(cameras)):
        cam = cameras[b].to(device)
        rays = camera_rays(cam, height, width)
        boxes = _pixel_boxes(surface, cam.c2w[0].float(), cam.focal_px(height)[0].float(), height, width)
        ncol = (boxes[:, 1] - boxes[:, 0] + 1).clamp_min(0)
        counts = ncol * (boxes[:, 3] - boxes[:, 2] + 1).clamp_min(0)
        best = torch.full((height * width,), float("inf"), device=device)
        winner = torch.full((height * width,), -1, dtype=torch.long, device=device)
        ends = torch.cumsum(counts, 0)
        chunk_start = 0
        while chunk_start < len(counts):
            base = int(ends[chunk_start - 1]) if chunk_start else 0
            chunk_end = max(int(torch.searchsorted(ends, base + max_pairs, right=True)), chunk_start + 1)
            face = torch.arange(chunk_start, chunk_end, device=device).repeat_interleave(counts[chunk_start:chunk_end])
            if face.numel():
                k = torch.arange(face.numel(), device=device) - (ends[face] - counts[face] - base)
                pixel = (boxes[face, 2] + k // ncol[face]) * width + boxes[face, 0] + k % ncol[face]
                t, _, hit = intersect(rays.origins[pixel], rays.directions[pixel], triangles[face])
                pixel, face, t = pixel[hit], face[hit], t[hit]
                chunk_best = torch.full_like(best, float("inf")).scatter_reduce(0, pixel, t, "amin")
                closest = t == chunk_best[pixel]
                chunk_winner = torch.full_like(winner, -1).scatter_reduce(0, pixel[closest], face[closest], "amax")
                better = chunk_best < best
                winner = torch.where(better, chunk_winner, winner)
                best = torch.minimum(best, chunk_best)
            chunk_start = chunk_end
        hit_pixels = (winner >= 0).nonzero().squeeze(-1)
        bary = torch.zeros(height * width, 3, device=device)
        if hit_pixels.numel():
            _, b_hit, _ = intersect(
                rays.origins[hit_pixels], rays.directions[hit_pixels], triangles[winner[hit_pixels]]
            )
            bary[hit_pixels] = b_hit.clamp(0, 1) / b_hit.clamp(0, 1).sum(-1, keepdim=True)
        faces_out.append(winner.reshape(height, width))
        depth_out.append(best.reshape(height, width))
        bary_out.append(bary.reshape(height, width, 3))
    return torch.stack(faces_out), torch.stack(depth_out), torch.stack(bary_out)


@torch.no_grad()
def render_mesh(
    surface: MeshSurface, cameras: Cameras, height: int, width: int, background: Tensor | None = None
) -> dict[str, Tensor]:
    """Albedo renders of the mesh in the layout of `render_cameras`: rgb [B, H, W, 3] (white background unless
    `background` [3] is given), opacity and depth [B, H, W, 1] (depth 0 on the background), face [B, H, W]."""
    face, depth, bary = rasterise(surface, cameras, height, width)
    hit = face >= 0
    bg = torch.ones(3, device=depth.device) if background is None else background.to(depth.device)
    rgb = bg.expand(*face.shape, 3).clone()
    if bool(hit.any()):
        rgb[hit] = surface.colour(face[hit], bary[hit])
    return {
        "rgb": rgb,
        "opacity": hit.float()[..., None],
        "depth": torch.where(hit, depth, torch.zeros_like(depth))[..., None],
        "face": face,
    }


__all__ = ["intersect", "rasterise", "render_mesh"]
