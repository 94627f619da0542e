"""The user's mesh written back animated, in the tools users open it with: the Khronos glTF validator (0 errors) and
three.js's GLTFLoader (what Preview 3D - Animation runs) playing one clip whose frames are the known motion."""

from __future__ import annotations

import numpy as np
import pytest

from a124_core.meshes import fit_transform, load_mesh
from a124_core.meshes.writeback import write_animated_source
from tests.glb_check import check_glb

from .builder import articulated_positions, build_test_mesh, write_glb, write_obj

TIMES = [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("writer", [write_glb, write_obj])
def test_written_back_mesh_validates_and_plays_the_motion_in_three(tmp_path, writer):
    mesh = build_test_mesh()
    asset = load_mesh(writer(mesh, tmp_path / ("model.glb" if writer is write_glb else "model.obj")))
    transform = fit_transform(asset.vertices, asset.faces)
    # the known motion, in scene units and the asset's vertex order (the loader keeps the file's order)
    file_frames = np.stack([articulated_positions(mesh, t) for t in TIMES]).astype(np.float32)
    np.testing.assert_allclose(asset.vertices, mesh.vertices, atol=1e-5)
    path, reports = write_animated_source(asset, transform, transform.to_scene(file_frames), tmp_path / "a.glb", 4.0)
    out = check_glb(path)
    assert out["validator"]["numErrors"] == 0, out["validator"]["messages"]
    (clip,) = out["three"]["clips"]
    assert clip["duration"] == pytest.approx(len(TIMES) / 4.0, abs=1e-6)
    (shown_mesh,) = out["three"]["meshes"]
    assert shown_mesh["vertexCount"] == len(mesh.vertices) and shown_mesh["morphTargets"] == len(TIMES)
    shown = np.array(out["three"]["frames"])
    tolerance = max(r.max_error for r in reports) * 2 / transform.scale + 1e-5
    np.testing.assert_allclose(shown, file_frames[:, out["three"]["indices"]], atol=tolerance)
