"""Mesh export: marching cubes geometry (radius, centre, orientation), colours, OBJ and the animated GLB."""

from __future__ import annotations

import math

import numpy as np
import pygltflib
import pytest
import torch
import trimesh

from a124_core.gltf.accessors import read_accessor
from a124_core.outputs.mesh import (
    MeshConfig,
    extract_mesh,
    extract_mesh_sequence,
    write_animated_glb,
    write_obj,
    write_obj_sequence,
)


def sphere(center=(0.0, 0.0, 0.0), radius=0.5, sharpness=40.0):
    """Density 20 * sigmoid(k (r - |x - c|)): exactly 10 (the default threshold) on the sphere of radius r."""
    c = torch.tensor(center)

    def density(points):
        return 20.0 * torch.sigmoid(sharpness * (radius - (points - c).norm(dim=-1)))

    return density


def albedo(points):
    return (points + 1.0) / 2.0


def test_sphere_radius_within_a_voxel():
    config = MeshConfig(resolution=48)
    voxel = 2.0 / (config.resolution - 1)
    mesh = extract_mesh(sphere(radius=0.55), None, config)
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radii - 0.55).max() < voxel
    assert abs(radii.mean() - 0.55) < 0.1 * voxel


def test_off_centre_sphere_pins_axis_order_and_orientation():
    center = np.array([0.35, -0.2, 0.1])
    mesh = extract_mesh(sphere(tuple(center), 0.3), albedo, MeshConfig(resolution=56))
    np.testing.assert_allclose(mesh.vertices.mean(axis=0), center, atol=0.01)
    # Normals point outward and faces wind counter-clockwise seen from outside (positive signed volume).
    assert (np.einsum("ij,ij->i", mesh.normals, mesh.vertices - center) > 0).all()
    np.testing.assert_allclose(np.linalg.norm(mesh.normals, axis=1), 1.0, atol=1e-5)
    v, f = mesh.vertices.astype(np.float64), mesh.faces
    volume = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6.0
    assert volume == pytest.approx(4.0 / 3.0 * math.pi * 0.3**3, rel=0.03)
    # Vertex colours are the albedo at the vertices.
    np.testing.assert_allclose(mesh.colors, (mesh.vertices + 1.0) / 2.0, atol=1e-6)


def test_threshold_is_the_iso_level():
    mesh = extract_mesh(sphere(radius=0.5), None, MeshConfig(resolution=40, threshold=15.0))
    expected = 0.5 - math.log(15.0 / 5.0) / 40.0  # 20 sigmoid(k (r - d)) = 15  <=>  d = r - ln(3) / k
    assert np.linalg.norm(mesh.vertices, axis=1).mean() == pytest.approx(expected, abs=0.01)


def test_surface_cut_by_the_bound_is_closed():
    def slab(points):  # a box reaching past the bound in x: open without boundary closing
        inside = (points[:, 1].abs() < 0.3) & (points[:, 2].abs() < 0.3)
        return torch.where(inside, 20.0, 0.0)

    mesh = extract_mesh(slab, None, MeshConfig(resolution=24))
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=True)
    assert tm.is_watertight and tm.volume > 0
    open_mesh = extract_mesh(slab, None, MeshConfig(resolution=24, close_boundary=False))
    assert not trimesh.Trimesh(open_mesh.vertices, open_mesh.faces, process=True).is_watertight


def test_empty_field_names_the_density_range():
    with pytest.raises(ValueError, match=r"ranges over \[0, 2\].*never crosses threshold 10"):
        extract_mesh(lambda p: 2.0 * (p[:, 0] > 0), None, MeshConfig(resolution=8))
    with pytest.raises(ValueError, match="resolution must be at least 3"):
        extract_mesh(sphere(), None, MeshConfig(resolution=2))
    with pytest.raises(ValueError, match="densities"):
        extract_mesh(lambda p: p, None, MeshConfig(resolution=8))


def _scene(t: float):
    return sphere(radius=0.3 + 0.3 * t), albedo


def test_sequence_from_callable_and_from_list():
    config = MeshConfig(resolution=32)
    times = [0.0, 0.5, 1.0]
    meshes = extract_mesh_sequence(_scene, times, config)
    radii = [np.linalg.norm(m.vertices, axis=1).mean() for m in meshes]
    np.testing.assert_allclose(radii, [0.3, 0.45, 0.6], atol=2.0 / 31)
    listed = extract_mesh_sequence([_scene(t) for t in times], config=config)
    assert [m.vertices.shape for m in listed] == [m.vertices.shape for m in meshes]
    with pytest.raises(ValueError, match="needs `times`"):
        extract_mesh_sequence(_scene, None, config)
    with pytest.raises(ValueError, match=r"frame 1 \(t = -2\)"):
        extract_mesh_sequence(_scene, [0.0, -2.0], config)


def _accessor(gltf: pygltflib.GLTF2, index: int) -> np.ndarray:
    return read_accessor(gltf, index)


def test_animated_glb_has_one_mesh_per_frame_and_shows_one_at_a_time(tmp_path):
    meshes = extract_mesh_sequence(_scene, [0.0, 0.25, 0.5, 0.75], MeshConfig(resolution=24))
    fps = 8.0
    path = write_animated_glb(meshes, tmp_path / "anim.glb", fps=fps)

    gltf = pygltflib.GLTF2().load(str(path))
    assert len(gltf.meshes) == 4
    for i, mesh in enumerate(meshes):
        prim = gltf.meshes[i].primitives[0]
        np.testing.assert_allclose(_accessor(gltf, prim.attributes.POSITION), mesh.vertices, atol=1e-6)
        np.testing.assert_allclose(_accessor(gltf, prim.attributes.COLOR_0), mesh.colors, atol=0.5 / 255 + 1e-6)
        assert gltf.accessors[prim.attributes.COLOR_0].componentType == pygltflib.UNSIGNED_BYTE
        np.testing.assert_array_equal(_accessor(gltf, prim.indices).reshape(-1, 3), mesh.faces)
    (animation,) = gltf.animations
    assert len(animation.channels) == 4
    frame_nodes = {}
    for channel in animation.channels:
        sampler = animation.samplers[channel.sampler]
        assert channel.target.path == "scale" and sampler.interpolation == "STEP"
        frame_nodes[gltf.nodes[channel.target.node].mesh] = (
            _accessor(gltf, sampler.input)[:, 0],
            _accessor(gltf, sampler.output),
        )
    # STEP sampling at the middle of frame k: only the node holding mesh k has a non-zero scale.
    for k in range(4):
        t = (k + 0.5) / fps
        visible = []
        for mesh_index, (times, scales) in frame_nodes.items():
            key = np.searchsorted(times, t, side="right") - 1
            if scales[key].min() > 0:
                visible.append(mesh_index)
        assert visible == [k]
    # At rest (no animation played) frame 0 shows.
    rest = [n.mesh for n in gltf.nodes if n.mesh is not None and (n.scale or [1, 1, 1])[0] > 0]
    assert rest == [0]

    scene = trimesh.load(str(path))
    assert len(scene.geometry) == 4
    counts = sorted(g.vertices.shape[0] for g in scene.geometry.values())
    assert counts == sorted(m.vertices.shape[0] for m in meshes)


def test_single_mesh_glb_is_static(tmp_path):
    meshes = extract_mesh_sequence([_scene(0.0)], config=MeshConfig(resolution=20))
    gltf = pygltflib.GLTF2().load(str(write_animated_glb(meshes, tmp_path / "one.glb")))
    assert len(gltf.meshes) == 1 and not gltf.animations


def test_obj_sequence_round_trips(tmp_path):
    meshes = extract_mesh_sequence(_scene, [0.0, 1.0], MeshConfig(resolution=20))
    paths = write_obj_sequence(meshes, tmp_path / "objs")
    assert [p.name for p in paths] == ["frame_0000.obj", "frame_0001.obj"]
    for path, mesh in zip(paths, meshes):
        loaded = trimesh.load(str(path), process=False)
        np.testing.assert_allclose(loaded.vertices, mesh.vertices, atol=1e-5)
        np.testing.assert_array_equal(loaded.faces, mesh.faces)
        np.testing.assert_allclose(loaded.visual.vertex_colors[:, :3] / 255.0, mesh.colors, atol=1 / 255 + 1e-6)
        assert loaded.volume > 0
    with pytest.raises(ValueError, match="at least one mesh"):
        write_obj_sequence([], tmp_path)
    no_colour = extract_mesh(sphere(), None, MeshConfig(resolution=12))
    assert trimesh.load(str(write_obj(no_colour, tmp_path / "plain.obj")), process=False).faces.shape[0] > 0


def test_field_filling_the_whole_bound_is_an_error():
    with pytest.raises(ValueError, match="never crosses"):
        extract_mesh(lambda p: torch.full((p.shape[0],), 50.0), None, MeshConfig(resolution=8))
