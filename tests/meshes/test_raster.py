"""The mesh rasteriser: analytic depths of a cube, and per-pixel agreement with brute-force ray casting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a124_core.cameras import make_cameras
from a124_core.meshes import fit_transform, load_mesh, render_mesh
from a124_core.meshes.raster import intersect, rasterise
from a124_core.meshes.surface import MeshSurface
from a124_core.rays import aabb_near_far, camera_rays

from .builder import build_test_mesh, write_glb

HALF = 0.35


def cube_surface() -> MeshSurface:
    corners = torch.tensor([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=torch.float32)
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    faces = torch.tensor([[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads])
    return MeshSurface(corners * HALF, faces, torch.zeros(12, dtype=torch.long), torch.ones(1, 3), [None])


def random_cameras(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return make_cameras(20 + 140 * torch.rand(n, generator=g), 360 * torch.rand(n, generator=g) - 180)


def test_cube_depth_and_mask_match_the_slab_intersection():
    cameras = random_cameras(4, seed=0)
    out = render_mesh(cube_surface(), cameras, 40, 40)
    rays = camera_rays(cameras, 40, 40)
    near, far = aabb_near_far(rays.origins, rays.directions, HALF, min_near=0.0)
    inside = (far > near).reshape(4, 40, 40)
    grazing = ((far - near) < 1e-4).reshape(4, 40, 40)  # rays that touch an edge: either answer is right
    mask = out["opacity"][..., 0] > 0.5
    assert bool((mask == inside)[~grazing].all())
    depth = out["depth"][..., 0]
    np.testing.assert_allclose(depth[inside], near.reshape(4, 40, 40)[inside], atol=1e-5)
    assert bool((out["rgb"][~mask] == 1).all())  # white background
    assert 0.2 < float(mask.float().mean()) < 0.6


@pytest.fixture(scope="module")
def arms_surface(tmp_path_factory):
    asset = load_mesh(write_glb(build_test_mesh(), tmp_path_factory.mktemp("r") / "m.glb"))
    return MeshSurface.from_asset(asset, fit_transform(asset.vertices, asset.faces))


def test_rasteriser_agrees_with_brute_force_ray_casting(arms_surface):
    """Every pixel against every triangle; a small max_pairs forces many chunks (chunk borders are exercised)."""
    cameras = random_cameras(3, seed=1)
    size = 24
    face, depth, bary = rasterise(arms_surface, cameras, size, size, max_pairs=700)
    rays = camera_rays(cameras, size, size)
    tri = arms_surface.triangles
    n_rays, n_faces = len(rays), tri.shape[0]
    t, _, _ = intersect(
        rays.origins.repeat_interleave(n_faces, 0),
        rays.directions.repeat_interleave(n_faces, 0),
        tri.repeat(n_rays, 1, 1),
    )
    best = t.reshape(n_rays, n_faces).min(1).values.reshape(3, size, size)
    hit = torch.isfinite(best)
    assert bool(((face >= 0) == hit).all())
    np.testing.assert_allclose(depth[hit], best[hit], atol=1e-6)
    # the barycentrics of the winning face reproduce the hit point
    points = rays.origins.reshape(3, size, size, 3) + rays.directions.reshape(3, size, size, 3) * depth[..., None]
    on_face = (tri[face[hit]] * bary[hit][..., None]).sum(1)
    np.testing.assert_allclose(on_face, points[hit], atol=1e-5)


def test_render_colours_are_the_surface_colour(arms_surface):
    cameras = random_cameras(2, seed=2)
    out = render_mesh(arms_surface, cameras, 32, 32)
    face, _, bary = rasterise(arms_surface, cameras, 32, 32)
    hit = face >= 0
    np.testing.assert_allclose(out["rgb"][hit], arms_surface.colour(face[hit], bary[hit]), atol=1e-6)
    np.testing.assert_array_equal(out["face"], face)
