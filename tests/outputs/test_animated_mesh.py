"""Morph-target export of deformation scenes: inverse warp, GLB contents read back, encodings, reuse on a user mesh."""

from __future__ import annotations

import sys

import numpy as np
import pygltflib
import pytest
import torch

from a124_core.fields.grid4d import Grid4DField
from a124_core.gltf.accessors import GlbBlob, read_accessor
from a124_core.gltf.container import write_glb
from a124_core.gltf.morph import add_morph_animation
from a124_core.outputs.animated_mesh import (
    AnimatedMeshConfig,
    decimate,
    export_animated_mesh,
    frame_positions,
    invert_deformation,
)
from a124_core.outputs.mesh import Mesh, MeshConfig

TOL = 1e-4
SMALL = AnimatedMeshConfig(mesh=MeshConfig(resolution=40), target_faces=1500, num_frames=6, fps=12.0)


def file_frames(gltf: pygltflib.GLTF2, mesh_index: int = 0) -> np.ndarray:
    """Positions [F, V, 3] a viewer shows at t = k / fps: base + sum_j w_j(k) * target_j (weights from the file)."""
    prim = gltf.meshes[mesh_index].primitives[0]
    base = read_accessor(gltf, prim.attributes.POSITION)
    # pygltflib loads morph targets as dicts
    targets = np.stack(
        [read_accessor(gltf, t["POSITION"] if isinstance(t, dict) else t.POSITION) for t in prim.targets]
    )
    sampler = gltf.animations[0].samplers[0]
    weights = read_accessor(gltf, sampler.output).reshape(-1, len(prim.targets))[: len(prim.targets)]
    return base[None] + np.einsum("kj,jvc->kvc", weights, targets)


def round_trip(field, positions: np.ndarray, targets: np.ndarray, times) -> float:
    """Largest |x_d + d(x_d, t) - x_c| over frames."""
    with torch.no_grad():
        return max(
            float(
                (
                    torch.from_numpy(p).float()
                    + field.displacement(torch.from_numpy(p).float(), t)
                    - torch.from_numpy(targets)
                )
                .norm(dim=-1)
                .max()
            )
            for p, t in zip(positions, times)
        )


def test_inverse_warp_solves_the_field_and_is_exact_for_a_constant_shift(deformation_field):
    targets = torch.rand(500, 3) * 0.8 - 0.4
    x, residual, steps = invert_deformation(deformation_field, targets, 0.6, 50, TOL)
    assert float(residual.max()) < TOL and steps < 50
    assert round_trip(deformation_field, x[None].numpy(), targets.numpy(), [0.6]) < TOL

    class Shift:
        def displacement(self, x, t):
            return torch.tensor([0.1, -0.2, 0.05]).expand_as(x)

    x, residual, steps = invert_deformation(Shift(), targets, 0.0, 10, 1e-6)
    assert torch.allclose(x, targets - torch.tensor([0.1, -0.2, 0.05]), atol=1e-6) and steps == 2


def test_inverse_warp_reports_non_convergence():
    class Mirror:  # x + d(x) = -x: orientation-reversing, the relaxed iteration cannot converge
        def displacement(self, x, t):
            return -2 * x

    vertices = (np.random.default_rng(0).random((50, 3)) * 0.5 + 0.1).astype(np.float32)
    config = AnimatedMeshConfig(num_frames=2, inverse_iterations=20)
    with pytest.warns(UserWarning, match="did not converge"):
        _, stats = frame_positions(Mirror(), vertices, config.times(), config)
    assert stats.unconverged == 100 and min(stats.max_residual) > 0.1


@pytest.mark.parametrize("encoding", ["float", "int16"])
def test_morph_glb_reads_back_the_inverse_warp(tmp_path, deformation_field, encoding, one_thread):
    config = AnimatedMeshConfig(**{**SMALL.__dict__, "encoding": encoding})
    asset, report, size = export_animated_mesh(deformation_field, tmp_path / "a.glb", config)
    assert report.encoding == encoding and size == (tmp_path / "a.glb").stat().st_size
    assert asset.stats.unconverged == 0 and max(asset.stats.max_residual) < TOL
    gltf = pygltflib.GLTF2().load(str(tmp_path / "a.glb"))
    assert len(gltf.meshes) == 1 and len(gltf.animations) == 1
    mesh = gltf.meshes[0]
    assert len(mesh.primitives[0].targets) == 6 and mesh.weights == [0.0] * 6
    assert mesh.extras["targetNames"] == [f"frame_{k:04d}" for k in range(6)]
    sampler = gltf.animations[0].samplers[0]
    assert sampler.interpolation == "LINEAR"
    np.testing.assert_allclose(read_accessor(gltf, sampler.input)[:, 0], np.arange(7) / 12.0, atol=1e-7)
    keys = read_accessor(gltf, sampler.output).reshape(7, 6)  # one-hot rows; the last frame holds to 6 / fps
    assert np.count_nonzero(keys[:6] - np.diag(np.diag(keys[:6]))) == 0 and np.array_equal(keys[6], keys[5])
    frames = file_frames(gltf)
    quantisation = report.max_error * np.sqrt(3) + 1e-6
    np.testing.assert_allclose(frames, asset.positions, atol=quantisation)
    # What the file shows is the field's inverse warp: the round trip through the field lands on the canonical
    # vertex within the solver tolerance plus the file's quantisation (|dd/dx| < 1 here).
    assert (
        round_trip(deformation_field, frames.astype(np.float32), asset.mesh.vertices, asset.times)
        < TOL + 2 * quantisation
    )
    colours = read_accessor(gltf, mesh.primitives[0].attributes.COLOR_0)
    assert gltf.accessors[mesh.primitives[0].attributes.COLOR_0].componentType == pygltflib.UNSIGNED_BYTE
    np.testing.assert_allclose(colours, asset.mesh.colors, atol=0.5 / 255 + 1e-6)
    assert ("KHR_mesh_quantization" in gltf.extensionsRequired) == (encoding == "int16")


def test_float_encoding_stores_still_frames_sparse_and_auto_picks_the_smaller(tmp_path):
    mesh, positions = _two_part_motion()
    sizes = {}
    for encoding in ("float", "int16"):
        gltf = _gltf_with(mesh)
        report = add_morph_animation(gltf, 0, positions, fps=10.0, encoding=encoding, interpolation="STEP")
        np.testing.assert_allclose(file_frames(gltf), positions, atol=report.max_error * np.sqrt(3) + 1e-6)
        sizes[encoding] = report.bytes_added
        if encoding == "float":
            assert report.sparse_frames == 4  # frame 0 has no motion (no data), 1-4 move a quarter of the vertices
    assert sizes["float"] < sizes["int16"]  # a quarter of the vertices move: sparse float32 beats dense int16
    assert add_morph_animation(_gltf_with(mesh), 0, positions, fps=10.0).encoding == "float"
    everything = positions + 0.01 * np.arange(5, dtype=np.float32)[:, None, None]  # now every vertex moves
    report = add_morph_animation(_gltf_with(mesh), 0, everything, fps=10.0)
    assert report.encoding == "int16" and report.bytes_added < 400 * 12 * 5


def _two_part_motion() -> tuple[Mesh, np.ndarray]:
    """A 400-vertex strip; in frames 1-4 only its first 100 vertices move."""
    rng = np.random.default_rng(1)
    vertices = rng.random((400, 3)).astype(np.float32)
    faces = np.stack([np.arange(398), np.arange(1, 399), np.arange(2, 400)], 1)
    mesh = Mesh(vertices, faces, np.tile(np.float32([0, 1, 0]), (400, 1)), rng.random((400, 3)).astype(np.float32))
    positions = np.repeat(vertices[None], 5, 0)
    for k in range(1, 5):
        positions[k, :100] += 0.05 * k * rng.standard_normal((100, 3)).astype(np.float32)
    return mesh, positions


def _gltf_with(mesh: Mesh, textured: bool = False) -> pygltflib.GLTF2:
    """A one-node GLB like a user's: with textured=True its primitive also has UVs and a textured material."""
    from a124_core.outputs.mesh import mesh_primitive, vertex_colour_material

    gltf = pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0"))
    blob = GlbBlob(gltf)
    prim = mesh_primitive(blob, mesh, vertex_colour_material(gltf))
    if textured:
        uv = (mesh.vertices[:, :2] - mesh.vertices[:, :2].min(0)) / np.ptp(mesh.vertices[:, :2], 0)
        prim.attributes.TEXCOORD_0 = blob.accessor(uv.astype(np.float32), "VEC2", target=pygltflib.ARRAY_BUFFER)
    blob.finish()
    gltf.meshes.append(pygltflib.Mesh(primitives=[prim]))
    gltf.nodes.append(pygltflib.Node(mesh=0))
    gltf.scenes.append(pygltflib.Scene(nodes=[0]))
    gltf.scene = 0
    return gltf


def test_add_morph_animation_keeps_a_user_mesh(tmp_path):
    mesh, positions = _two_part_motion()
    gltf = _gltf_with(mesh, textured=True)
    prim = gltf.meshes[0].primitives[0]
    before = {k: read_accessor(gltf, getattr(prim.attributes, k)) for k in ("POSITION", "NORMAL", "TEXCOORD_0")}
    indices = read_accessor(gltf, prim.indices)
    report = add_morph_animation(gltf, 0, positions, fps=24.0, encoding="int16")
    loaded = pygltflib.GLTF2().load(str(write_glb(gltf, tmp_path / "user.glb")))
    prim = loaded.meshes[0].primitives[0]
    for key, values in before.items():
        np.testing.assert_array_equal(read_accessor(loaded, getattr(prim.attributes, key)), values)
    np.testing.assert_array_equal(read_accessor(loaded, prim.indices), indices)
    assert prim.material == 0 and len(prim.targets) == 5
    np.testing.assert_allclose(file_frames(loaded), positions, atol=report.max_error + 1e-6)


def test_bad_morph_inputs_are_rejected():
    mesh, positions = _two_part_motion()
    gltf = _gltf_with(mesh)
    with pytest.raises(ValueError, match=r"\[F, 400, 3\]"):
        add_morph_animation(gltf, 0, positions[:, :10], fps=10.0)
    with pytest.raises(ValueError, match="fps"):
        add_morph_animation(gltf, 0, positions, fps=0.0)
    with pytest.raises(ValueError, match="out of range"):
        add_morph_animation(gltf, 3, positions, fps=10.0)
    gltf.nodes[0].mesh = None
    with pytest.raises(ValueError, match="No node shows mesh 0"):
        add_morph_animation(gltf, 0, positions, fps=10.0)
    gltf = _gltf_with(mesh)
    add_morph_animation(gltf, 0, positions, fps=10.0)
    with pytest.raises(ValueError, match="already has morph targets"):
        add_morph_animation(gltf, 0, positions, fps=10.0)
    with pytest.raises(ValueError, match="deformation-field scene"):
        export_animated_mesh(Grid4DField(), "unused.glb")


def test_decimation_and_its_fallback(monkeypatch):
    mesh, _ = _two_part_motion()
    small, note = decimate(mesh, 200)
    assert 150 <= small.faces.shape[0] <= 200 and "decimated 398 ->" in note
    assert np.allclose(np.linalg.norm(small.normals, axis=1), 1, atol=1e-5)
    monkeypatch.setitem(sys.modules, "fast_simplification", None)
    with pytest.warns(UserWarning, match="not installed"):
        same, note = decimate(mesh, 200)
    assert same is mesh and "kept 398 faces" in note
