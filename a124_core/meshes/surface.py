"""The mesh surface in scene coordinates as tensors: colour at a surface point, and area-uniform samples.

Colour of a point on face f with barycentrics b (weights of the face's three vertices): UVs and vertex colours are
interpolated with b, the texture sampled bilinearly at the UV (texel centres at (i + 0.5) / W, repeat wrapping,
glTF's default sampler), and all factors multiplied (see asset.py). Both the mesh renders and the field's albedo
targets use this one function, so they agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .asset import MeshAsset
from .normalise import MeshTransform


def sample_texture(texture: Tensor, uv: Tensor) -> Tensor:
    """Bilinear lookup of a [H, W, 3] uint8 texture at uv [N, 2] (v up, repeat wrap) -> [N, 3] float in [0, 1]."""
    h, w = texture.shape[:2]
    x = uv[:, 0] * w - 0.5
    y = (1.0 - uv[:, 1]) * h - 0.5  # image row 0 is the top, v = 1
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.long(), y0.long()
    flat = texture.reshape(-1, texture.shape[-1])

    def texel(yy: Tensor, xx: Tensor) -> Tensor:
        return flat[torch.remainder(yy, h) * w + torch.remainder(xx, w)].float()

    top = texel(y0, x0) * (1 - fx) + texel(y0, x0 + 1) * fx
    bottom = texel(y0 + 1, x0) * (1 - fx) + texel(y0 + 1, x0 + 1) * fx
    return (top * (1 - fy) + bottom * fy) / 255.0


@dataclass
class MeshSurface:
    """Triangles and their colour model on one device."""

    vertices: Tensor  # [V, 3] float32, scene coordinates
    faces: Tensor  # [F, 3] long
    face_materials: Tensor  # [F] long
    base_colors: Tensor  # [M, 3] float32
    textures: list[Tensor | None]  # per material: [H, W, 3] uint8 or None
    uv: Tensor | None = None  # [V, 2]
    vertex_colors: Tensor | None = None  # [V, 3]

    @classmethod
    def from_asset(cls, asset: MeshAsset, transform: MeshTransform, device: str | torch.device = "cpu") -> MeshSurface:
        def tensor(a: np.ndarray | None, dtype=torch.float32) -> Tensor | None:
            return None if a is None else torch.tensor(np.asarray(a), dtype=dtype, device=device)

        return cls(
            vertices=tensor(transform.to_scene(asset.vertices)),
            faces=tensor(asset.faces, torch.long),
            face_materials=tensor(asset.face_materials, torch.long),
            base_colors=tensor(np.stack([m.base_color for m in asset.materials])),
            textures=[tensor(m.texture, torch.uint8) for m in asset.materials],
            uv=tensor(asset.uv),
            vertex_colors=tensor(asset.vertex_colors),
        )

    @property
    def triangles(self) -> Tensor:  # [F, 3 corners, 3]
        return self.vertices[self.faces]

    def face_normals(self) -> tuple[Tensor, Tensor]:
        """Unit normals [F, 3] (right-handed corner order) and areas [F]."""
        tri = self.triangles
        cross = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        norm = cross.norm(dim=-1)
        return cross / norm.clamp_min(1e-20)[:, None], 0.5 * norm

    def interpolate(self, values: Tensor, face: Tensor, bary: Tensor) -> Tensor:
        """Per-vertex values [V, C] at surface points (face [N], barycentrics [N, 3]) -> [N, C]."""
        return (values[self.faces[face]] * bary[..., None]).sum(1)

    def colour(self, face: Tensor, bary: Tensor) -> Tensor:
        """Display-space colour [N, 3] in [0, 1] of surface points (face [N], barycentrics [N, 3])."""
        material = self.face_materials[face]
        out = self.base_colors[material].clone()
        if self.uv is not None:
            uv = self.interpolate(self.uv, face, bary)
            for m, texture in enumerate(self.textures):
                if texture is not None:
                    sel = (material == m).nonzero().squeeze(-1)
                    out[sel] = out[sel] * sample_texture(texture, uv[sel])
        if self.vertex_colors is not None:
            out = out * self.interpolate(self.vertex_colors, face, bary)
        return out.clamp(0.0, 1.0)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """n area-uniform surface points: positions [n, 3], face normals [n, 3], faces [n], barycentrics [n, 3]."""
        normals, areas = self.face_normals()
        face = torch.multinomial(areas.double().cpu(), n, replacement=True, generator=generator).to(areas.device)
        r1, r2 = torch.rand(2, n, generator=generator).to(areas.device)
        s = r1.sqrt()
        bary = torch.stack([1 - s, s * (1 - r2), s * r2], -1)
        points = (self.triangles[face] * bary[..., None]).sum(1)
        return points, normals[face], face, bary


__all__ = ["MeshSurface", "sample_texture"]
