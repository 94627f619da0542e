"""The pack's SD prior on ComfyUI's own models (a real ComfyUI: COMFYUI_PATH): SD1.5 and SD2.1-base (epsilon and
v-prediction) give the diffusers prior's epsilon, and a LoRA applied by ComfyUI's LoRA loader reaches the epsilon
the prior computes (personalised 4D with a LoRA). The measurements run under ComfyUI's interpreter
(comfy_models_check.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from comfy_server import COMFYUI_PATH, REPO, _python_for_comfy, comfy_env, requires_comfyui  # noqa: E402

pytestmark = [pytest.mark.comfyui, requires_comfyui]


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    from a124_core.priors.tiny import build_tiny_models

    root = tmp_path_factory.mktemp("comfy-models")
    build_tiny_models(root / "models")
    script = Path(__file__).resolve().parent / "comfy_models_check.py"
    run = subprocess.run(
        [_python_for_comfy(), str(script), str(REPO), str(root / "models"), str(root / "scratch")],
        cwd=COMFYUI_PATH,
        env=comfy_env(_python_for_comfy(), root),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(json.dumps(result))
    return result


def test_sd15_and_sd21_base_models_read_as_the_diffusers_prior(measured):
    """ComfyUI's SD15 and SD20 model classes on the tiny files: the same epsilon (relative error), and for a
    v-prediction model the epsilon converted from v (ComfyUI's x0 does it)."""
    for name in ("sd15", "sd21"):
        assert measured[name]["eps"] < 1e-4 and measured[name]["v"] < 1e-4, (name, measured[name])


def test_a_lora_from_comfyuis_loader_reaches_the_priors_epsilon(measured):
    """LoraLoaderModelOnly patches every cross-attention key/value projection: the prior's epsilon moves, and equals
    the epsilon of a model holding the merged weights."""
    lora = measured["lora"]
    assert lora["patched_keys"] >= 4
    assert lora["moved"] > 0.05, lora
    assert lora["to_merged"] < 1e-4, lora
