"""`python -m a124_core animate-mesh`: bad input is one line and exit 2 with nothing written; the smoke preset
writes the user's mesh back animated (same vertices, faces, UVs; a morph target per frame; one clip)."""

from __future__ import annotations

import json

import numpy as np
import pygltflib
import pytest
import trimesh

from a124_core.cli import main
from a124_core.gltf.accessors import read_accessor

from .meshes.builder import build_test_mesh, write_glb, write_obj


def animate(mesh, out, *extra: str) -> int:
    return main(["animate-mesh", "--mesh", str(mesh), "--prompt", "a robot is waving", "--out", str(out), *extra])


def _one_error_line(capsys, expected: str) -> None:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err


@pytest.fixture(scope="module")
def limb_mesh():
    return build_test_mesh()


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, limb_mesh):
    out = tmp_path / "out"
    (tmp_path / "cloud.ply").write_bytes(trimesh.PointCloud(limb_mesh.vertices).export(file_type="ply"))
    assert animate(tmp_path / "cloud.ply", out) == 2
    _one_error_line(capsys, "no faces (a point cloud)")
    glb = write_glb(limb_mesh, tmp_path / "model.glb")
    assert animate(glb, out, "--max-faces", "100") == 2  # the 2-million-face refusal, at a limit this mesh passes
    _one_error_line(capsys, "more than the limit of 100")
    obj = write_obj(limb_mesh, tmp_path / "textured.obj")
    [png] = tmp_path.glob("*.png")
    png.unlink()
    assert animate(obj, out) == 2
    _one_error_line(capsys, "not next to it")
    (tmp_path / "notes.glb").write_bytes(b"this is not a binary glTF")
    assert animate(tmp_path / "notes.glb", out) == 2
    _one_error_line(capsys, "notes.glb")
    (tmp_path / "notes.txt").write_text("hello")
    assert animate(tmp_path / "notes.txt", out) == 2
    _one_error_line(capsys, "unsupported mesh extension")
    assert animate(tmp_path / "absent.glb", out) == 2
    _one_error_line(capsys, "does not exist")
    assert animate(glb, out, "--preset", "paper", "--models-dir", str(tmp_path / "models")) == 2
    _one_error_line(capsys, "text-to-video-ms-1.7b")
    assert not out.exists(), "bad input must not create the output folder"


def test_smoke_preset_writes_the_users_mesh_back_animated(tmp_path, capsys, limb_mesh, one_thread):
    glb = write_glb(limb_mesh, tmp_path / "model.glb")
    out = tmp_path / "run"
    assert animate(glb, out, "--frames", "5", "--fps", "10") == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    written = pygltflib.GLTF2().load(out / "meshes" / "animated_mesh.glb")
    source = pygltflib.GLTF2().load(glb)
    [prim], [src] = written.meshes[0].primitives, source.meshes[0].primitives
    assert read_accessor(written, prim.indices).size == limb_mesh.faces.size
    np.testing.assert_array_equal(read_accessor(written, prim.indices), read_accessor(source, src.indices))
    base = read_accessor(written, prim.attributes.POSITION)
    assert base.shape == limb_mesh.vertices.shape
    np.testing.assert_array_equal(base, read_accessor(source, src.attributes.POSITION))
    np.testing.assert_array_equal(
        read_accessor(written, prim.attributes.TEXCOORD_0), read_accessor(source, src.attributes.TEXCOORD_0)
    )
    assert prim.material == src.material and written.images and written.textures
    assert len(prim.targets) == 5 and len(written.animations) == 1
    sampler = written.animations[0].samplers[0]
    assert read_accessor(written, sampler.input)[-1, 0] == pytest.approx(0.5)  # 5 frames at 10 fps
    for name in ("orbit_grid", "orbit_animating"):
        assert (out / "renders" / f"{name}.mp4").stat().st_size > 0 and summary["outputs"][name]
    assert (out / "checkpoints" / "coarse.safetensors").is_file()
    assert summary["seconds"]["fit"] > 0 and "morph targets" in summary["notes"][-1]
