"""Surface colour: texel-exact bilinear lookups, factors multiplied, uniform samples on the surface."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a124_core.meshes import fit_transform, load_mesh
from a124_core.meshes.surface import MeshSurface, sample_texture

from .builder import TEXTURE_BLOCKS, build_test_mesh, texture_image, write_glb


def test_texture_lookup_orientation_texel_centres_bilinear_and_wrap():
    texture = torch.tensor(texture_image())  # 16 x 16, 8 x 8 blocks; row 0 is the top
    blocks = torch.tensor(TEXTURE_BLOCKS).float() / 255
    # v up: (0.25, 0.75) lies in the image's top-left block, (0.75, 0.25) in the bottom-right one
    uv = torch.tensor([[0.25, 0.75], [0.75, 0.75], [0.25, 0.25], [0.75, 0.25]])
    np.testing.assert_allclose(sample_texture(texture, uv), blocks.reshape(4, 3), atol=1e-6)
    # the texel-centre lattice: u = 7.5 / 16 is texel 7 exactly, u = 8 / 16 halfway between texels 7 and 8
    top = torch.tensor([[7.5 / 16, 0.9], [8.0 / 16, 0.9]])
    np.testing.assert_allclose(sample_texture(texture, top)[0], blocks[0, 0], atol=1e-6)
    np.testing.assert_allclose(sample_texture(texture, top)[1], (blocks[0, 0] + blocks[0, 1]) / 2, atol=1e-6)
    # repeat wrapping: u + 1 and u - 2 are the same point
    np.testing.assert_allclose(sample_texture(texture, uv + 1), sample_texture(texture, uv - 2), atol=1e-5)


@pytest.fixture(scope="module")
def surface(tmp_path_factory):
    mesh = build_test_mesh()
    asset = load_mesh(write_glb(mesh, tmp_path_factory.mktemp("s") / "m.glb"))
    return mesh, MeshSurface.from_asset(asset, fit_transform(asset.vertices, asset.faces))


def test_colour_at_vertices_is_the_texel_under_their_uv(surface):
    mesh, s = surface
    faces = torch.arange(len(mesh.faces))
    bary = torch.tensor([1.0, 0.0, 0.0]).expand(len(faces), 3)
    corner_uv = torch.tensor(mesh.uv[mesh.faces[:, 0]], dtype=torch.float32)
    expected = sample_texture(torch.tensor(mesh.texture), corner_uv)
    np.testing.assert_allclose(s.colour(faces, bary), expected, atol=1e-5)


def test_factors_multiply(surface):
    _, s = surface
    faces, bary = torch.tensor([0, 5, 30]), torch.full((3, 3), 1 / 3)
    plain = s.colour(faces, bary)
    s2 = MeshSurface(**{**s.__dict__, "base_colors": s.base_colors * 0.5})
    s2.vertex_colors = torch.full((len(s.vertices), 3), 0.5)
    np.testing.assert_allclose(s2.colour(faces, bary), plain * 0.25, atol=1e-6)


def test_samples_lie_on_the_surface_uniformly_by_area(surface):
    _, s = surface
    points, normals, face, bary = s.sample(20000, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(bary.sum(-1), 1.0, atol=1e-6)
    assert bool((bary >= 0).all())
    np.testing.assert_allclose(points, s.interpolate(s.vertices, face, bary), atol=1e-6)
    # distance to the face's plane is zero and the normals are unit
    tri = s.triangles[face]
    np.testing.assert_allclose(((points - tri[:, 0]) * normals).sum(-1), 0.0, atol=1e-6)
    np.testing.assert_allclose(normals.norm(dim=-1), 1.0, atol=1e-6)
    # share of samples on the body (faces 0..11) matches its share of the area within 3 standard deviations
    _, areas = s.face_normals()
    p = float(areas[:12].sum() / areas.sum())
    share = float((face < 12).float().mean())
    assert abs(share - p) < 3 * (p * (1 - p) / 20000) ** 0.5
