"""Harness of the host tests: a real ComfyUI, started headless on CPU (only when COMFYUI_PATH is set).

Setup: tiny models in a temporary models folder (`--extra-model-paths-config`), a temporary base directory
(`--base-directory`: custom_nodes with the pack linked in, user data; ComfyUI's own folder is only read), a free
loopback port, temporary input/output/temp folders and an in-memory database. ComfyUI runs under
`$COMFYUI_PYTHON` (default: this interpreter), which needs ComfyUI's requirements, this pack's requirements and
torchvision (tests/comfyui_host/host_venv.sh builds one).

torchvision workaround: ComfyUI imports torchvision at start-up, and no CPU build of torchvision 0.28.0 (the
match of torch 2.13.0) exists; the registry's CUDA build fails on import with `operator torchvision::nms does not
exist` because `_meta_registrations.py` registers fake kernels for C++ ops that were never loaded. When the
interpreter's torchvision fails that way, a copy of the installed package is made in the session's temporary
folder with `_meta_registrations.py` emptied, and that copy is put first on ComfyUI's PYTHONPATH. The installed
torchvision is never modified; its pure-PyTorch parts (transforms) work, its C++ ops stay unavailable.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.paths import EXAMPLES, REPO  # noqa: F401  (re-exported to the host tests)

#: Paths from the environment may be relative to where pytest started (CI: ../shared/comfyui/0.8.0); ComfyUI runs in
#: its own folder, so they are made absolute here.
COMFYUI_PATH = os.path.abspath(os.environ["COMFYUI_PATH"]) if os.environ.get("COMFYUI_PATH") else None
requires_comfyui = pytest.mark.skipif(
    not COMFYUI_PATH, reason="COMFYUI_PATH is not set: these tests start a real ComfyUI checkout (see docs/nodes.md)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Comfy:
    """HTTP client of the running server."""

    def __init__(self, url: str, root: Path, log: Path):
        self.url, self.root, self.log = url, root, log

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path: str, data: dict) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path, json.dumps(data).encode(), {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = r.read()
                return r.status, json.loads(body) if body else {}
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def wait(self, prompt_id: str, timeout: float = 300) -> dict:
        """Poll /history until the prompt finished; returns its entry."""
        end = time.time() + timeout
        while time.time() < end:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and entry["status"].get("status_str"):
                return entry
            time.sleep(0.5)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s; log: {self.log}")


def _python_for_comfy() -> str:
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    return os.path.abspath(python) if os.sep in python else python


def torchvision_path(python: str, workdir: Path) -> str | None:
    """None when `python` imports torchvision; else a folder holding a patched copy (see the module docstring)."""
    probe = subprocess.run([python, "-c", "import torchvision"], capture_output=True, text=True)
    if probe.returncode == 0:
        return None
    where = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util; print(importlib.util.find_spec('torchvision').submodule_search_locations[0])",
        ],
        capture_output=True,
        text=True,
    )
    if where.returncode != 0 or "torchvision::nms" not in probe.stderr:
        pytest.skip(
            f"{python} cannot import torchvision (install torchvision==0.28.0 --no-deps): {probe.stderr[-500:]}"
        )
    target = workdir / "torchvision-patched"
    if (target / "torchvision").is_dir():
        return str(target)
    shutil.copytree(where.stdout.strip(), target / "torchvision")
    (target / "torchvision" / "_meta_registrations.py").write_text(
        '"""Emptied by the Animate124 host tests: the C++ ops these fakes describe are not loaded."""\n'
    )
    return str(target)


def comfy_env(python: str, workdir: Path) -> dict[str, str]:
    """The environment ComfyUI runs in: offline, no bytecode written into its (read-only) folder, one OpenMP thread,
    the patched torchvision copy if needed, and `$COMFYUI_EXTRA_PYTHONPATH` first (CI: the frontend and templates
    packages ComfyUI 0.3.64 pins, beside a venv built for 0.8.0)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
    # One intra-op thread per server: the tiny models' ops are too small to split, and with two servers (and the
    # rest of the machine) on two cores, OpenMP waiting threads made a 100-step smoke stage 5x slower (150 s vs 30 s).
    env.setdefault("OMP_NUM_THREADS", "1")
    extra = [os.path.abspath(p) for p in os.environ.get("COMFYUI_EXTRA_PYTHONPATH", "").split(os.pathsep) if p]
    paths = [*extra, torchvision_path(python, workdir), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def static_smoke_prompt(steps: int, seed: int, run_name: str) -> dict:
    """LoadImage panda.png -> Reference -> a smoke-preset static stage without priors (nodes 1-3 of an API prompt):
    the cheapest graph that trains and writes checkpoints."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "panda.png"}},
        "2": {"class_type": "A124_Reference", "inputs": {"image": ["1", 0], "mask": ["1", 1], "border_ratio": 0.2}},
        "3": {
            "class_type": "A124_StaticStage",
            "inputs": {
                "reference": ["2", 0],
                "prompt": "",
                "preset": "smoke",
                "steps": steps,
                "training_seed": seed,
                "run_name": run_name,
                "resume_from": "",
                "negative_prompt": "",
            },
        },
    }
