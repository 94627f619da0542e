"""Inside/outside: exact winding numbers of known solids; the voxel flood fill against them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from a124_core.meshes import fit_transform, load_mesh
from a124_core.meshes.inside import grid_lookup, voxel_centres, voxel_inside, winding_numbers
from a124_core.meshes.surface import MeshSurface

from .builder import build_test_mesh, write_glb
from .test_raster import HALF, cube_surface


def icosphere(subdivisions: int, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return torch.tensor(sphere.vertices, dtype=torch.float32), torch.tensor(sphere.faces)


def test_winding_number_of_a_cube_and_its_orientation():
    cube = cube_surface()
    points = torch.tensor([[0.0, 0.0, 0.0], [0.3, -0.2, 0.1], [0.5, 0.0, 0.0], [0.0, 0.9, -0.9]])
    w = winding_numbers(points, cube.triangles)
    np.testing.assert_allclose(w, [1, 1, 0, 0], atol=1e-5)
    np.testing.assert_allclose(winding_numbers(points, cube.triangles.flip(1)), [-1, -1, 0, 0], atol=1e-5)
    # half a cube (top and side faces removed...): an open surface gives fractional values, e.g. 0.5 at a face centre
    assert abs(float(winding_numbers(torch.tensor([[0.0, 0.0, HALF]]), cube.triangles)[0]) - 0.5) < 1e-5


def test_voxel_volume_of_a_cube_and_a_sphere():
    resolution = 64
    voxel = 2 / resolution
    inside, shell = voxel_inside(cube_surface().triangles, resolution)
    # shell voxels count as inside: the cube grows by at most one voxel per side
    side = inside.sum() ** (1 / 3) * voxel
    assert 2 * HALF <= side <= 2 * HALF + 2 * voxel
    vertices, faces = icosphere(3, 0.6)
    inside, _ = voxel_inside(vertices[faces], resolution)
    volume = inside.sum() * voxel**3
    exact = 4 / 3 * math.pi * 0.6**3
    assert exact <= volume <= 4 / 3 * math.pi * (0.6 + voxel) ** 3


def test_voxels_agree_with_winding_numbers_on_overlapping_parts(tmp_path):
    """The arms start inside the body (overlap): parity would call the overlap outside, both methods inside."""
    asset = load_mesh(write_glb(build_test_mesh(), tmp_path / "m.glb"))
    surface = MeshSurface.from_asset(asset, fit_transform(asset.vertices, asset.faces))
    resolution = 96
    inside, _ = voxel_inside(surface.triangles, resolution)
    g = torch.Generator().manual_seed(0)
    points = torch.rand(6000, 3, generator=g) * 1.2 - 0.6
    truth = winding_numbers(points, surface.triangles)
    assert float(truth.max()) == pytest.approx(2.0, abs=1e-4)  # overlap region: inside both parts
    voxels = grid_lookup(torch.as_tensor(inside), points) > 0.5
    inner = truth > 0.5
    assert bool(voxels[inner].all())  # nothing inside is lost, the overlap included
    # what the voxels add lies within about one voxel of the surface (the shell counts as inside)
    from scipy.spatial import cKDTree

    samples, *_ = surface.sample(200_000, g)
    distance, _ = cKDTree(samples.numpy()).query(points[voxels & ~inner].numpy())
    voxel = 2 / resolution
    assert distance.max() < 1.2 * voxel, distance.max() / voxel
    assert (voxels & ~inner).sum() < (voxels & inner).sum()


def test_small_holes_are_closed_and_sheets_stay_thin():
    vertices, faces = icosphere(3, 0.6)
    resolution = 64
    closed, _ = voxel_inside(vertices[faces], resolution)
    holed, _ = voxel_inside(vertices[faces[1:]], resolution)  # one triangle missing: a hole ~1.5 voxels wide
    assert (holed != closed).sum() <= 0.01 * closed.sum()
    # an opening wider than the closing (a cap of radius ~0.25, 8 voxels) lets the flood in: a hollow shell
    cap = vertices[faces].mean(1)[:, 1] > 0.55
    leaky, shell = voxel_inside(vertices[faces[~cap]], resolution)
    assert shell.sum() <= leaky.sum() < 1.1 * shell.sum() < 0.5 * closed.sum()
    # a square sheet has no inside: it stays a layer one to two voxels thick
    sheet = torch.tensor(
        [
            [[-0.5, 0.0, -0.5], [0.5, 0.0, -0.5], [0.5, 0.0, 0.5]],
            [[-0.5, 0.0, -0.5], [0.5, 0.0, 0.5], [-0.5, 0.0, 0.5]],
        ]
    )
    inside, shell = voxel_inside(sheet, resolution)
    assert (inside == shell).all() and 0 < inside.sum() <= 2 * (resolution // 2 + 1) ** 2


def test_grid_lookup_is_voxel_centred():
    grid = torch.zeros(8, 8, 8)
    grid[2, 5, 7] = 1.0
    centres = voxel_centres(8)
    assert float(grid_lookup(grid, centres[2, 5, 7][None])[0]) == pytest.approx(1.0)
    halfway = (centres[2, 5, 7] + centres[3, 5, 7]) / 2
    assert float(grid_lookup(grid, halfway[None])[0]) == pytest.approx(0.5)
