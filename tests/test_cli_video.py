"""`python -m a124_core run --video` and `animate-mesh --video` (issue 26): bad input is one line and exit 2 before
anything is written; the smoke preset turns a tiny mp4 into the animated GLB (video to 4D) and a video of a mesh
into that mesh with morph targets (mesh from video)."""

from __future__ import annotations

import json

import numpy as np
import pygltflib
import pytest

from a124_core.cli import main

from .meshes.builder import build_test_mesh, write_glb
from .oracle.clip import render_clip
from .reference.conftest import empty_homes, no_rembg  # noqa: F401 (fixtures: no rembg model reachable)
from .reference.videos import moving_square, write_vfr_mp4, write_video


def _one_error_line(capsys, *expected: str) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and all(e in err[0] for e in expected), err
    return err[0]


def run_video(video, out, *extra: str) -> int:
    return main(["run", "--video", str(video), "--prompt", "a ball is rolling", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def square_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("square")
    frames, masks = moving_square(n=6)
    return write_video(folder / "clip.mp4", frames), write_video(folder / "mask.mp4", masks), frames, masks


@pytest.mark.usefixtures("no_rembg")
def test_bad_video_input_is_one_line_before_anything_is_written(tmp_path, capsys, square_files):
    video, mask, frames, masks = square_files
    out = tmp_path / "out"
    assert main(["run", "--video", str(video), "--image", str(video), "--prompt", "a ball", "--out", str(out)]) == 2
    _one_error_line(capsys, "--image", "--video")
    assert main(["run", "--mask-video", str(mask), "--prompt", "a ball", "--out", str(out)]) == 2
    _one_error_line(capsys, "--mask-video", "--video")
    assert run_video(video, out, "--mask-video", str(mask), "--token", "_ball_") == 2
    _one_error_line(capsys, "--token", "refine stage")
    assert run_video(tmp_path / "absent.mp4", out) == 2
    _one_error_line(capsys, "does not exist")
    one = write_video(tmp_path / "one.mp4", frames[:1])
    assert run_video(one, out) == 2
    _one_error_line(capsys, "1 frame", "at least 2")
    short_mask = write_video(tmp_path / "short_mask.mp4", masks[:4])
    assert run_video(video, out, "--mask-video", str(short_mask)) == 2
    _one_error_line(capsys, "4 frames", "6")
    holes = masks.copy()
    holes[3] = 0
    assert run_video(video, out, "--mask-video", str(write_video(tmp_path / "holes.mp4", holes))) == 2
    _one_error_line(capsys, "empty", "3")
    assert run_video(video, out) == 2  # no mask video, no alpha in an mp4, no rembg model file
    _one_error_line(capsys, "--mask-video", "u2net")
    vfr = write_vfr_mp4(tmp_path / "vfr.mp4", np.concatenate([frames, frames]))
    assert run_video(vfr, out, "--mask-video", str(mask)) == 2
    _one_error_line(capsys, "variable frame rate", "fps=")
    assert run_video(video, out, "--mask-video", str(mask), "--preset", "paper", "--models-dir", str(tmp_path)) == 2
    err = capsys.readouterr().err  # one line per missing folder, as for an image run
    assert err.startswith("error: Model files are missing") and "stable-diffusion-v1-5" in err and "zero123-xl" in err
    assert "control_v11f1e_sd15_tile" not in err and "text-to-video" not in err, "only the priors a video run loads"
    assert not out.exists(), "bad input must not create the output folder"


def test_smoke_video_to_4d_writes_the_animated_glb(tmp_path, capsys, one_thread):
    video, mask = render_clip(num_frames=12, size=48).write_videos(tmp_path)
    out = tmp_path / "run"
    code = run_video(video, out, "--mask-video", str(mask), *("--render-views", "2", "--render-frames", "4"))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "every 2nd frame is used (6 frames" in captured.err, "12 frames over the smoke budget of 8: what is kept"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["representation"] == "deformation", "a video run animates one canonical object"
    for stage in ("static", "coarse"):
        assert (out / "checkpoints" / f"{stage}.safetensors").is_file()
    assert not (out / "checkpoints" / "refine.safetensors").exists() and "embedding" not in summary["outputs"]
    assert (out / "reference_clip.safetensors").is_file() and (out / "reference.safetensors").is_file()
    assert float(summary["outputs"]["reference_view_psnr_db"]) > 0
    glb = pygltflib.GLTF2().load(str(out / "meshes" / "animated_mesh.glb"))
    assert glb.animations and glb.meshes[0].primitives[0].targets, "one mesh with morph targets"
    assert (out / "renders" / "reference_view_albedo.mp4").is_file()


def test_animate_mesh_from_a_video_of_it(tmp_path, capsys, one_thread):
    from a124_core.meshes.normalise import DEFAULT_RADIUS, fit_transform

    from .oracle.clip_mesh import MeshTruth, film

    mesh = build_test_mesh()
    glb = write_glb(mesh, tmp_path / "model.glb")
    out = tmp_path / "run"
    base = ["animate-mesh", "--mesh", str(glb), "--out", str(out)]
    assert main([*base, "--mask-video", str(glb)]) == 2
    _one_error_line(capsys, "--mask-video", "--video")
    truth = MeshTruth(mesh, fit_transform(mesh.vertices, mesh.faces, DEFAULT_RADIUS).to_scene)
    frames, masks = film(truth, num_frames=6)
    video = write_video(tmp_path / "film.mp4", (frames.numpy() * 255).round().astype(np.uint8))
    mask = write_video(tmp_path / "film_mask.mp4", (masks.numpy() * 255).round().astype(np.uint8))
    code = main([*base, "--video", str(video), "--mask-video", str(mask), "--frames", "3"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["video"] == str(video) and summary["prompt"] == ""
    written = pygltflib.GLTF2().load(summary["outputs"]["animated_mesh"])
    targets = written.meshes[0].primitives[0].targets
    assert len(targets) == 3, "one morph target per frame"
