"""Loading keeps each file's vertices, order, faces, UVs and colours; ComfyUI MESH tensors load too."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from a124_core.meshes import load_mesh, mesh_from_tensors
from a124_core.meshes.asset import linear_to_srgb, srgb_to_linear

from .builder import build_test_mesh, write_glb, write_obj, write_ply
from .gltf_files import write_multi_primitive_glb


@pytest.fixture(scope="module")
def mesh():
    return build_test_mesh()


def _same_geometry(asset, mesh):
    # Exact vertex count and order (the box has 24 split vertices: any merging or reordering shows here).
    assert asset.vertices.shape == mesh.vertices.shape
    np.testing.assert_allclose(asset.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(asset.faces, mesh.faces)


def test_glb_keeps_vertices_uvs_texture_and_bytes(mesh, tmp_path):
    path = write_glb(mesh, tmp_path / "model.glb")
    asset = load_mesh(path)
    _same_geometry(asset, mesh)
    np.testing.assert_allclose(asset.uv, mesh.uv, atol=1e-6)
    assert len(asset.materials) == 1
    np.testing.assert_array_equal(asset.materials[0].texture, mesh.texture)
    np.testing.assert_allclose(asset.materials[0].base_color, 1.0, atol=1e-6)
    assert asset.source.format == "glb" and asset.source.data == path.read_bytes()
    [segment] = asset.segments
    assert (segment.mesh, segment.primitive, segment.start, segment.count) == (0, 0, 0, len(mesh.vertices))
    assert asset.notes == []


def test_glb_vertex_colours_are_converted_from_linear(mesh, tmp_path):
    asset = load_mesh(write_glb(mesh, tmp_path / "colours.glb", colours="vertex"))
    _same_geometry(asset, mesh)
    assert asset.uv is None
    # COLOR_0 is stored linear in uint8; display colours come back within the quantisation of dark values
    np.testing.assert_allclose(asset.vertex_colors, mesh.vertex_colors, atol=0.01)


def test_srgb_round_trip():
    c = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(c)), c, atol=1e-6)
    assert abs(float(linear_to_srgb(np.float32(0.5))) - 0.7354) < 1e-3  # linear 0.5 displays as 0.735


def test_obj_with_mtl_and_texture(mesh, tmp_path):
    asset = load_mesh(write_obj(mesh, tmp_path / "model.obj"))
    _same_geometry(asset, mesh)
    np.testing.assert_allclose(asset.uv, mesh.uv, atol=1e-6)
    np.testing.assert_array_equal(asset.materials[0].texture, mesh.texture)


def test_ply_vertex_colours_are_display_values(mesh, tmp_path):
    asset = load_mesh(write_ply(mesh, tmp_path / "model.ply"))
    _same_geometry(asset, mesh)
    np.testing.assert_allclose(asset.vertex_colors, mesh.vertex_colors, atol=1 / 255)


def test_gltf_with_external_buffer_and_image(mesh, tmp_path):
    import trimesh

    glb = load_mesh(write_glb(mesh, tmp_path / "model.glb"))
    files = trimesh.load(tmp_path / "model.glb", process=False).export(file_type="gltf")
    folder = tmp_path / "gltf"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    asset = load_mesh(folder / "model.gltf")
    _same_geometry(asset, mesh)
    np.testing.assert_allclose(asset.uv, glb.uv, atol=1e-6)
    np.testing.assert_array_equal(asset.materials[0].texture, mesh.texture)
    assert asset.source.format == "gltf" and asset.source.data[:4] == b"glTF"  # packed into one GLB


def test_multi_primitive_glb_maps_accessor_order_and_node_transforms(tmp_path):
    path, expected = write_multi_primitive_glb(tmp_path / "multi.glb")
    asset = load_mesh(path)
    # the POINTS primitive (mesh 0, primitive 1) is skipped; the others keep file order and accessor order
    assert [(s.mesh, s.primitive) for s in asset.segments] == [(m, p) for m, p, *_ in expected]
    assert asset.num_vertices == sum(len(e[2]) for e in expected)
    for (_, _, local, faces, matrix), seg in zip(expected, asset.segments):
        world = local.astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
        np.testing.assert_allclose(asset.vertices[seg.start : seg.start + seg.count], world, atol=1e-6)
        np.testing.assert_array_equal(asset.faces[seg.face_start : seg.face_start + seg.face_count] - seg.start, faces)
        np.testing.assert_allclose(seg.matrix, matrix, atol=1e-12)
    assert "3 of its 3 primitives have no material or colours: shown grey (0.8)" in asset.notes


def test_mesh_from_tensors_takes_the_first_batch_item(mesh):
    vertices = torch.tensor(np.stack([mesh.vertices, mesh.vertices + 1]), dtype=torch.float32)
    faces = torch.tensor(np.stack([mesh.faces, mesh.faces]))
    with pytest.warns(UserWarning, match="only the first"):
        asset = mesh_from_tensors(vertices, faces)
    _same_geometry(asset, mesh)
    assert asset.source.format == "tensors" and asset.uv is None and asset.vertex_colors is None
    np.testing.assert_allclose(asset.materials[0].base_color, 0.8)


def test_open_and_non_manifold_meshes_load_with_a_note(mesh):
    open_faces = mesh.faces[1:]  # one box triangle removed
    with pytest.warns(UserWarning, match="open surface"):
        asset = mesh_from_tensors(mesh.vertices, open_faces)
    assert any("boundary edges" in n for n in asset.notes)
    fin = np.array([[0, 1, 24]])  # a third triangle on a box edge (vertex 24 is an arm vertex)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mesh_from_tensors(mesh.vertices, np.concatenate([mesh.faces, fin]))
    assert any("non-manifold" in str(w.message) for w in caught)


def test_closed_test_mesh_has_no_topology_notes(mesh):
    with pytest.warns(UserWarning) as caught:  # the box's split seam vertices weld into a closed surface
        asset = mesh_from_tensors(mesh.vertices, mesh.faces)
    assert asset.notes == ["it has no material or colours: shown grey (0.8)"] and len(caught) == 1
