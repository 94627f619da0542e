"""The `comfy` fixture: a real ComfyUI for the host tests (see comfy_server.py); skipped without COMFYUI_PATH.

ComfyUI's own folder is only read (CI's copy is read-only): `--base-directory` points custom_nodes, user data and
the rest at the session's temporary folder, where the pack is linked into custom_nodes/.
`comfy.start_another(name, front_end_root=None)` starts one more server on another loopback port with the same
models and the same output folder (its own input and temp folders; optionally another frontend), stopped with the
first at the end of the session.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from comfy_server import (  # noqa: E402
    COMFYUI_PATH,
    EXAMPLES,
    REPO,
    Comfy,
    _python_for_comfy,
    comfy_env,
    free_port,
)


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    if not COMFYUI_PATH:
        pytest.skip("COMFYUI_PATH is not set")
    from a124_core.priors.tiny import build_tiny_models
    from tests.tiny_clip import write_tiny_clip

    root = tmp_path_factory.mktemp("comfy")
    models = root / "models"
    build_tiny_models(models)
    write_tiny_clip(models / "animate124" / "tiny-clip")
    (models / "diffusers" / "zeroscope_v2_576w").symlink_to(models / "diffusers" / "text-to-video-ms-1.7b")
    (models / "checkpoints" / "v1-5-pruned-emaonly.safetensors").symlink_to(
        models / "checkpoints" / "tiny-sd15.safetensors"
    )
    for name in ("input", "output", "temp"):
        (root / name).mkdir()
    Image.open(EXAMPLES / "panda-dance" / "rgba.png").convert("RGBA").resize((96, 96)).save(
        root / "input" / "panda.png"
    )
    from tests.meshes.builder import build_test_mesh, write_glb

    (root / "input" / "3d").mkdir()
    write_glb(build_test_mesh(), root / "input" / "3d" / "model.glb")  # what the mesh workflows pick
    folders = ("checkpoints", "diffusers", "controlnet", "embeddings", "configs", "animate124")
    extra = root / "extra_model_paths.yaml"
    extra.write_text("a124_tiny:\n  base_path: " + str(models) + "\n" + "".join(f"  {f}: {f}/\n" for f in folders))

    link_name = "comfyui-animate124"
    (root / "custom_nodes").mkdir()
    (root / "custom_nodes" / link_name).symlink_to(REPO, target_is_directory=True)
    servers: list = []
    try:
        server = start_server(root, link_name, extra, root / "input", root / "temp", servers)
        server.start_another = lambda name, front_end_root=None: start_server(
            root, link_name, extra, root / f"input-{name}", root / f"temp-{name}", servers, front_end_root
        )
        yield server
    finally:
        for proc in servers:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_server(
    root: Path, link_name: str, extra: Path, inputs: Path, temp: Path, procs: list, front_end_root: str | None = None
) -> Comfy:
    """One headless ComfyUI on a free loopback port writing to `root/output` (shared by all servers of the session),
    with `root` as its base directory; the process is appended to `procs` for the fixture to stop."""
    inputs.mkdir(exist_ok=True)
    temp.mkdir(exist_ok=True)
    if not (inputs / "panda.png").exists():
        shutil.copy(root / "input" / "panda.png", inputs / "panda.png")
        shutil.copytree(root / "input" / "3d", inputs / "3d")
    port = free_port()
    python = _python_for_comfy()
    env = comfy_env(python, root)
    log = root / f"comfyui-{port}.log"
    cmd = [
        python,
        "main.py",
        "--cpu",
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        "--base-directory",
        str(root),
        "--disable-all-custom-nodes",
        "--whitelist-custom-nodes",
        link_name,
        "--input-directory",
        str(inputs),
        "--output-directory",
        str(root / "output"),
        "--temp-directory",
        str(temp),
        "--database-url",
        "sqlite:///:memory:",
        "--extra-model-paths-config",
        str(extra),
        *(["--front-end-root", front_end_root] if front_end_root else []),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=COMFYUI_PATH, env=env, stdout=out, stderr=subprocess.STDOUT)
    procs.append(proc)
    server = Comfy(f"http://127.0.0.1:{port}", root, log)
    end = time.time() + 240
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"ComfyUI exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            server.get("/system_stats")
            break
        except (urllib.error.URLError, ConnectionError):
            if time.time() > end:
                raise TimeoutError(f"ComfyUI did not answer within 240 s:\n{log.read_text()[-4000:]}") from None
            time.sleep(1)
    server.link_name, server.front_end_root = link_name, front_end_root
    return server
