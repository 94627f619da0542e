"""The write-back base: the user's own GLB (or a faithful one), and per-primitive local positions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from a124_core.meshes import (
    MeshLoadConfig,
    fit_transform,
    load_mesh,
    mesh_from_tensors,
    primitive_positions,
    source_glb,
)
from tests.glb_check import check_glb, validate_glb_bytes

from .builder import build_test_mesh, write_glb, write_obj, write_ply
from .gltf_files import write_multi_primitive_glb


def test_glb_input_is_kept_byte_for_byte_and_positions_map_to_local_accessors(tmp_path):
    path, expected = write_multi_primitive_glb(tmp_path / "multi.glb")
    asset = load_mesh(path)
    data, segments = source_glb(asset)
    assert data == path.read_bytes() and segments == asset.segments
    transform = fit_transform(asset.vertices, asset.faces)
    rest = transform.to_scene(asset.vertices)
    # two frames: the rest pose, and every vertex moved by 0.1 scene units along +y
    frames = np.stack([rest, rest + [0.0, 0.1, 0.0]])
    by_mesh = primitive_positions(segments, transform, frames)
    assert sorted(by_mesh) == [0, 1] and len(by_mesh[0]) == 2 and len(by_mesh[1]) == 1
    locals_in_order = by_mesh[0] + by_mesh[1]
    for (_, _, local, _, matrix), positions in zip(expected, locals_in_order):
        np.testing.assert_allclose(positions[0], local, atol=1e-5)  # rest: the file's own accessor data
        # the move maps through the inverse scale and node rotation/scale into local units
        delta = np.linalg.inv(matrix[:3, :3]) @ np.array([0.0, 0.1 / transform.scale, 0.0])
        np.testing.assert_allclose(positions[1] - positions[0], np.broadcast_to(delta, local.shape), atol=1e-5)


def _round_trip(asset, tmp_path):
    data, segments = source_glb(asset)
    (tmp_path / "out.glb").write_bytes(data)
    again = load_mesh(tmp_path / "out.glb")
    assert [(s.start, s.count, s.face_start, s.face_count) for s in again.segments] == [
        (s.start, s.count, s.face_start, s.face_count) for s in segments
    ]
    np.testing.assert_allclose(again.vertices, asset.vertices, atol=1e-6)
    np.testing.assert_array_equal(again.faces, asset.faces)
    return again, data


def test_obj_is_written_as_a_faithful_glb(tmp_path):
    mesh = build_test_mesh()
    asset = load_mesh(write_obj(mesh, tmp_path / "m.obj"))
    again, data = _round_trip(asset, tmp_path)
    np.testing.assert_allclose(again.uv, asset.uv, atol=1e-6)
    np.testing.assert_array_equal(again.materials[0].texture, mesh.texture)
    np.testing.assert_allclose(again.materials[0].base_color, asset.materials[0].base_color, atol=1e-5)
    (tmp_path / "obj.glb").write_bytes(data)
    report = check_glb(tmp_path / "obj.glb")
    assert report["validator"]["numErrors"] == 0, report["validator"]["messages"]
    (shown,) = report["three"]["meshes"]  # three.js draws it textured, with its UVs
    assert shown["hasTexture"] and shown["hasUVs"] and shown["vertexCount"] == again.vertices.shape[0]


def test_ply_and_tensors_are_written_as_faithful_glbs(tmp_path):
    mesh = build_test_mesh()
    asset = load_mesh(write_ply(mesh, tmp_path / "m.ply"))
    again, coloured = _round_trip(asset, tmp_path)
    np.testing.assert_allclose(again.vertex_colors, asset.vertex_colors, atol=1e-5)  # float COLOR_0: no rounding
    with pytest.warns(UserWarning, match="grey"):
        plain = mesh_from_tensors(mesh.vertices, mesh.faces)
    again, data = _round_trip(plain, tmp_path)
    np.testing.assert_allclose(again.materials[0].base_color, 0.8, atol=2e-3)  # trimesh reads factors as uint8
    assert (
        validate_glb_bytes(coloured, tmp_path)["numErrors"] == 0
        and validate_glb_bytes(data, tmp_path)["numErrors"] == 0
    )


def test_gltf_is_packed_into_one_glb(tmp_path):
    mesh = build_test_mesh()
    files = trimesh.load(write_glb(mesh, tmp_path / "m.glb"), process=False).export(file_type="gltf")
    document = json.loads(files["model.gltf"])
    # move the embedded image out into a file with a space in its name, as tools write them
    png = files[document["buffers"][document["bufferViews"][document["images"][0]["bufferView"]]["buffer"]]["uri"]]
    view = document["bufferViews"][document["images"][0]["bufferView"]]
    image_bytes = png[view.get("byteOffset", 0) : view.get("byteOffset", 0) + view["byteLength"]]
    document["images"][0] = {"uri": "albedo%20map.png"}
    folder = tmp_path / "gltf"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "albedo map.png").write_bytes(image_bytes)
    (folder / "model.gltf").write_text(json.dumps(document))
    asset = load_mesh(folder / "model.gltf")
    again, data = _round_trip(asset, tmp_path)
    np.testing.assert_array_equal(again.materials[0].texture, mesh.texture)
    assert len(json.loads(data[20 : 20 + int.from_bytes(data[12:16], "little")])["buffers"]) == 1
    packed = data
    # a missing image, when allowed, becomes a white 1x1 PNG (the faces show their material colour, as fitted)
    (folder / "albedo map.png").unlink()
    with pytest.warns(UserWarning, match="missing"):
        asset = load_mesh(folder / "model.gltf", MeshLoadConfig(allow_missing_textures=True))
    again, data = _round_trip(asset, tmp_path)
    assert again.materials[0].texture.shape == (1, 1, 3) and (again.materials[0].texture == 255).all()
    assert (
        validate_glb_bytes(packed, tmp_path)["numErrors"] == 0 and validate_glb_bytes(data, tmp_path)["numErrors"] == 0
    )
