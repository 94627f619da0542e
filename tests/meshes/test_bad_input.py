"""Every unusable mesh is refused with one clear ValueError before any fitting; odd ones load with a note."""

from __future__ import annotations

import numpy as np
import pytest

from a124_core.gltf.container import glb_bytes
from a124_core.meshes import MeshCheckConfig, MeshLoadConfig, load_mesh, mesh_from_tensors

from .builder import build_test_mesh, write_obj, write_ply
from .gltf_files import multi_primitive_document, write_multi_primitive_glb


@pytest.fixture(scope="module")
def mesh():
    return build_test_mesh()


def test_missing_file_and_unsupported_extensions(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mesh(tmp_path / "absent.glb")
    (tmp_path / "model.fbx").write_bytes(b"Kaydara FBX Binary")
    with pytest.raises(ValueError, match="FBX cannot be read.*export the model as GLB"):
        load_mesh(tmp_path / "model.fbx")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"unsupported mesh extension '\.txt'; pass one of"):
        load_mesh(tmp_path / "notes.txt")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("junk.glb", b"this is not a binary glTF", "is not a glTF binary file"),
        ("junk.gltf", b"{not json", "is not a glTF JSON file"),
        ("junk.ply", b"garbage bytes", "is not a readable PLY mesh"),
        ("junk.obj", b"hello world\n", "contains no triangles"),
        ("junk.stl", b"\x00" * 10, "contains no triangles; it is empty or not a mesh"),
    ],
)
def test_files_that_are_not_meshes(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_mesh(tmp_path / name)


def test_point_clouds_and_faceless_meshes(tmp_path, mesh):
    import trimesh

    (tmp_path / "cloud.ply").write_bytes(trimesh.PointCloud(mesh.vertices).export(file_type="ply"))
    with pytest.raises(ValueError, match="has vertices but no faces \\(a point cloud\\)"):
        load_mesh(tmp_path / "cloud.ply")
    (tmp_path / "points.obj").write_text("".join(f"v {x} {y} {z}\n" for x, y, z in mesh.vertices))
    with pytest.raises(ValueError, match="no faces"):
        load_mesh(tmp_path / "points.obj")
    with pytest.raises(ValueError, match="132 vertices but no faces"):
        mesh_from_tensors(mesh.vertices, np.zeros((0, 3), np.int64))


def test_two_million_faces_are_refused_not_decimated():
    # a 1000 x 1000 grid: 2,000,000 triangles as tensors (the MESH path); refused before anything is built
    n = 1001
    ij = np.arange(n * n).reshape(n, n)
    a, b, c, d = ij[:-1, :-1].ravel(), ij[:-1, 1:].ravel(), ij[1:, 1:].ravel(), ij[1:, :-1].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    x, y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    vertices = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], 1)
    with pytest.raises(ValueError, match="has 2,000,000 faces, more than the limit of 500,000.*Decimate"):
        mesh_from_tensors(vertices, faces)


def test_face_limit_applies_to_files(tmp_path, mesh):
    path = write_ply(mesh, tmp_path / "m.ply")
    with pytest.raises(ValueError, match="204 faces, more than the limit of 100"):
        load_mesh(path, MeshLoadConfig(checks=MeshCheckConfig(max_faces=100)))


def test_missing_texture_is_refused_or_replaced_by_the_material_colour(tmp_path, mesh):
    path = write_obj(mesh, tmp_path / "model.obj")
    [png] = tmp_path.glob("*.png")  # the name trimesh's OBJ writer chose
    png.unlink()
    with pytest.raises(ValueError, match=rf"names texture file\(s\) \['{png.name}'\] that are not next to it"):
        load_mesh(path)
    with pytest.warns(UserWarning, match="missing: their faces use the material"):
        asset = load_mesh(path, MeshLoadConfig(allow_missing_textures=True))
    assert asset.materials[0].texture is None
    np.testing.assert_allclose(asset.materials[0].base_color, 1.0)  # the MTL's Kd


def test_missing_gltf_image_is_refused(tmp_path, mesh):
    import json

    import trimesh

    from .builder import write_glb

    files = trimesh.load(write_glb(mesh, tmp_path / "m.glb"), process=False).export(file_type="gltf")
    document = json.loads(files["model.gltf"])
    document["images"][0] = {"uri": "albedo%20map.png", "mimeType": "image/png"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "model.gltf").write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"\['albedo map.png'\]"):
        load_mesh(tmp_path / "model.gltf")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.array([[np.nan, 0, 0], [1, 0, 0], [0, 1, 0]]), "non-finite vertex coordinates"),
        (np.zeros((3, 3)), "collapse to one point"),
    ],
)
def test_degenerate_vertices(values, message):
    with pytest.raises(ValueError, match=message):
        mesh_from_tensors(values, np.array([[0, 1, 2]]))


def test_bad_face_indices_and_shapes():
    with pytest.raises(ValueError, match=r"face indices in \[0, 7\] but only 3 vertices"):
        mesh_from_tensors(np.eye(3), np.array([[0, 1, 7]]))
    with pytest.raises(ValueError, match=r"vertices must be \[B, V, 3\]"):
        mesh_from_tensors(np.zeros((1, 4, 2)), np.array([[[0, 1, 2]]]))
    with pytest.raises(ValueError, match="integer vertex indices"):
        mesh_from_tensors(np.eye(3), np.array([[0.0, 1.0, 2.0]]))


def _write(tmp_path, name, document, blob):
    path = tmp_path / name
    path.write_bytes(glb_bytes(document, blob))
    return path


def test_gltf_features_the_write_back_cannot_keep(tmp_path):
    document, blob, _ = multi_primitive_document()
    document["nodes"][0]["skin"] = 0
    with pytest.raises(ValueError, match="is skinned \\(rigged\\)"):
        load_mesh(_write(tmp_path, "skin.glb", document, blob))
    document, blob, _ = multi_primitive_document()
    document["meshes"][1]["primitives"][0]["targets"] = [{"POSITION": 0}]
    with pytest.raises(ValueError, match="already has morph targets"):
        load_mesh(_write(tmp_path, "morph.glb", document, blob))
    document, blob, _ = multi_primitive_document()
    document["extensionsUsed"] = document["extensionsRequired"] = ["KHR_draco_mesh_compression"]
    with pytest.raises(ValueError, match="compressed \\(KHR_draco_mesh_compression\\)"):
        load_mesh(_write(tmp_path, "draco.glb", document, blob))


def test_instanced_mesh_is_refused(tmp_path):
    path, _ = write_multi_primitive_glb(tmp_path / "instanced.glb", extra_node={"mesh": 1, "translation": [3, 0, 0]})
    with pytest.raises(ValueError, match="is drawn by 2 nodes \\(instancing\\)"):
        load_mesh(path)
