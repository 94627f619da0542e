"""scripts/queue_images.py over two real ComfyUI servers on loopback sharing one output folder: four images, one
server interrupted while training; every image succeeds, both servers ran images, the interrupted image was retried
on the other server resuming its checkpoint, and the CSV says so. With --mesh, two 3D models animated by the shipped
animate-mesh workflow, one per server."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from comfy_server import EXAMPLES, REPO, requires_comfyui, static_smoke_prompt  # noqa: E402

pytestmark = [pytest.mark.comfyui, requires_comfyui]

#: Reference -> a few smoke-preset static steps (no priors) -> a 2-view render: the smallest run with a checkpoint.
WORKFLOW = static_smoke_prompt(steps=4, seed=1, run_name="x") | {
    "4": {
        "class_type": "A124_OrbitRender",
        "inputs": {
            "scene": ["3", 0],
            "mode": "test orbit",
            "channel": "albedo",
            "views": 2,
            "frames": 1,
            "resolution": 24,
            "fps": 10.0,
            "save_mp4": True,
            "filename_prefix": "x",
        },
    },
}


def images(folder: Path) -> list[Path]:
    """Four 96 px RGBA references: the three examples and a mirrored panda."""
    out = []
    for name in ("panda-dance", "fox-game", "space-shuttle"):
        out.append(folder / f"{name}.png")
        Image.open(EXAMPLES / name / "rgba.png").convert("RGBA").resize((96, 96)).save(out[-1])
    out.append(folder / "panda-mirrored.png")
    ImageOps.mirror(Image.open(out[0])).save(out[-1])
    return out


@pytest.fixture(scope="module")
def second(comfy):
    """Another server on loopback, same models and output folder."""
    return comfy.start_another("second")


def test_two_servers_share_four_images_and_retry_an_interrupted_one(comfy, second, tmp_path):
    (tmp_path / "wf.json").write_text(json.dumps(WORKFLOW))
    pictures = images(tmp_path)
    table = tmp_path / "runs.csv"
    started = time.time()
    script = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "queue_images.py"),
            *("--server", comfy.url, "--server", second.url),
            *("--workflow", str(tmp_path / "wf.json"), "--poll", "0.3", "--csv", str(table)),
            "--set",
            "4.views=2",
            *map(str, pictures),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Interrupt the second server's first image during training: the stage creates its checkpoint folder just before
    # its first step, and a step takes far longer than this loop's poll.
    end = time.time() + 300
    while True:
        assert time.time() < end and script.poll() is None, "the second server never trained an image"
        running = second.get("/queue")["queue_running"]
        run_name = running[0][2]["3"]["inputs"]["run_name"] if running else None
        if run_name and (comfy.root / "output" / "animate124" / "checkpoints" / run_name).is_dir():
            break
        time.sleep(0.05)
    second.post("/interrupt", {})
    output, _ = script.communicate(timeout=1200)
    print(output)
    assert script.returncode == 0, output
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["image", "server", "seconds", "outputs", "status", "resume_from"]
    done = [r for r in rows if r["status"] == "success"]
    assert sorted(Path(r["image"]).name for r in done) == sorted(p.name for p in pictures)
    assert {r["server"] for r in done} == {comfy.url, second.url}
    for row in done:
        stem = Path(row["image"]).stem
        assert row["outputs"].startswith(f"animate124/videos/{stem}_test-orbit_albedo_") and float(row["seconds"]) > 0
        assert (comfy.root / "output" / row["outputs"]).is_file()
        assert (comfy.root / "output" / "animate124" / "checkpoints" / stem / "static.safetensors").is_file()
    (interrupted,) = [r for r in rows if r["status"] == "interrupted"]
    assert interrupted["server"] == second.url
    (retry,) = [r for r in done if r["image"] == interrupted["image"]]
    assert retry["server"] == comfy.url and rows.index(retry) > rows.index(interrupted)
    stem = Path(retry["image"]).stem
    assert stem == run_name
    # The interrupt left <stage>_latest (the smoke preset writes it only then) in the shared folder; the retry on the
    # other server resumed from it.
    assert (comfy.root / "output" / "animate124" / "checkpoints" / stem / "static_latest.safetensors").is_file()
    assert retry["resume_from"] == f"checkpoints/{stem}/static_latest.safetensors"
    print(f"4 images over 2 servers in {time.time() - started:.0f} s; {stem} retried from {retry['resume_from']!r}")


def test_mesh_mode_animates_two_meshes_over_two_servers(comfy, second, tmp_path):
    """queue_images.py --mesh: two models uploaded to each server's input/3d, animated by the shipped Animate Mesh
    workflow (tiny settings via --set), one per server; each GLB (named after its model) is in the shared output."""
    from tests.meshes.builder import build_test_mesh, write_glb

    meshes = [tmp_path / "robot.glb", tmp_path / "lamp.glb"]
    for path in meshes:
        write_glb(build_test_mesh(), path)
    table = tmp_path / "meshes.csv"
    started = time.time()
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "queue_images.py"),
            "--mesh",
            *("--server", comfy.url, "--server", second.url),
            *("--set", "3.preset=smoke", "--set", "3.steps=2", "--set", "3.frames=3"),
            *("--poll", "0.3", "--csv", str(table)),
            *map(str, meshes),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(Path(r["image"]).name for r in rows) == ["lamp.glb", "robot.glb"]
    assert all(r["status"] == "success" for r in rows) and {r["server"] for r in rows} == {comfy.url, second.url}
    for row in rows:
        stem = Path(row["image"]).stem
        glb = f"animate124/meshes/{stem}_00001.glb"
        assert row["outputs"] == glb and (comfy.root / "output" / glb).is_file(), row
    print(f"2 meshes over 2 servers in {time.time() - started:.0f} s: {[r['outputs'] for r in rows]}")
