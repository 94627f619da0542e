"""GLBs checked in the tools users open them with: the Khronos glTF validator and three.js's GLTFLoader (what
ComfyUI's Preview 3D runs), through tests/js/check_glb.mjs. Needs node; the pinned npm packages
(tests/js/package.json) are installed by .ci/run, or here on first use."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent / "js"


def _ensure_packages() -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed (needed to run gltf-validator and three.js)")
    if (JS / "node_modules" / "gltf-validator").is_dir() and (JS / "node_modules" / "three").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"node is installed but npm is not: install npm, then `npm ci --prefix {JS}`")
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(JS)], capture_output=True, text=True)
    if done.returncode:
        pytest.fail(f"`npm ci --prefix {JS}` failed:\n{done.stderr[-2000:]}")


def check_glb(path: str | Path, samples: int = 64) -> dict:
    """{"validator": {numErrors, numWarnings, messages, extensionsUsed}, "three": {clips, meshes, frames...}}."""
    _ensure_packages()
    done = subprocess.run(
        ["node", str(JS / "check_glb.mjs"), str(path), str(samples)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def validate_glb_bytes(data: bytes, tmp_path: Path) -> dict:
    """The validator's report ({numErrors, numWarnings, messages, ...}) of GLB bytes."""
    path = tmp_path / "check.glb"
    path.write_bytes(data)
    return check_glb(path)["validator"]
