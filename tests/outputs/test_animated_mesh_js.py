"""The exported GLBs in the tools users open them with (tests/glb_check.py: the Khronos glTF validator and
three.js's GLTFLoader, what ComfyUI's Preview 3D runs)."""

from __future__ import annotations

import numpy as np
import pytest

from a124_core.gltf.container import write_glb
from a124_core.gltf.morph import add_morph_animation
from a124_core.outputs.animated_mesh import AnimatedMeshConfig, export_animated_mesh
from a124_core.outputs.mesh import MeshConfig, extract_mesh_sequence, write_animated_glb
from tests import glb_check

from .test_animated_mesh import _gltf_with, _two_part_motion
from .test_mesh import _scene


@pytest.fixture(scope="module")
def check_glb():
    return glb_check.check_glb


@pytest.mark.parametrize("encoding", ["float", "int16"])
def test_deformation_glb_validates_and_plays_in_three(tmp_path, deformation_field, check_glb, encoding, one_thread):
    config = AnimatedMeshConfig(
        mesh=MeshConfig(resolution=40), target_faces=1500, num_frames=6, fps=12.0, encoding=encoding
    )
    asset, report, _ = export_animated_mesh(deformation_field, tmp_path / "anim.glb", config)
    out = check_glb(tmp_path / "anim.glb")
    assert out["validator"]["numErrors"] == 0, out["validator"]["messages"]
    assert out["validator"]["numWarnings"] == 0, out["validator"]["messages"]
    (clip,) = out["three"]["clips"]
    assert clip["duration"] == pytest.approx(6 / 12.0, abs=1e-6)
    (mesh,) = out["three"]["meshes"]
    assert mesh["morphTargets"] == 6 and mesh["vertexCount"] == asset.mesh.vertices.shape[0] and mesh["hasColors"]
    # What three.js draws at frame k is the inverse warp the library solved (within the file's quantisation).
    shown = np.array(out["three"]["frames"])
    np.testing.assert_allclose(shown, asset.positions[:, out["three"]["indices"]], atol=report.max_error * 2 + 1e-6)


def test_user_mesh_with_uvs_and_per_frame_glb_validate(tmp_path, check_glb):
    mesh, positions = _two_part_motion()
    gltf = _gltf_with(mesh, textured=True)
    add_morph_animation(gltf, 0, positions, fps=10.0, interpolation="STEP")
    out = check_glb(write_glb(gltf, tmp_path / "user.glb"))
    assert out["validator"]["numErrors"] == 0, out["validator"]["messages"]
    assert out["three"]["clips"][0]["duration"] == pytest.approx(0.5, abs=1e-6)
    np.testing.assert_allclose(np.array(out["three"]["frames"]), positions[:, out["three"]["indices"]], atol=1e-6)

    meshes = extract_mesh_sequence(_scene, [0.0, 0.5, 1.0], MeshConfig(resolution=20))
    out = check_glb(write_animated_glb(meshes, tmp_path / "frames.glb", fps=6.0))
    assert out["validator"]["numErrors"] == 0, out["validator"]["messages"]
    assert out["three"]["clips"][0]["duration"] == pytest.approx(0.5, abs=1e-6)
    assert [m["vertexCount"] for m in out["three"]["meshes"]] == [m.vertices.shape[0] for m in meshes]
