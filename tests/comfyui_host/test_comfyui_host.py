"""Against a real ComfyUI (COMFYUI_PATH): the pack imports (without touching sys.path, and with a dependency
missing), /object_info documents every node, the bundled API workflows run (a VIDEO saved by core Save Video), a bad
prompt is refused with node_errors naming our node, and POST /interrupt during training leaves a checkpoint to resume
from."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from comfy_server import REPO, requires_comfyui, static_smoke_prompt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nodes"))
from tiny_settings import tiny  # noqa: E402

pytestmark = [pytest.mark.comfyui, requires_comfyui]


def api(name: str) -> dict:
    return tiny(json.loads((REPO / "workflows" / f"{name}_api.json").read_text()))


def submit(comfy, prompt: dict) -> str:
    status, body = comfy.post("/prompt", {"prompt": prompt, "client_id": "a124-host-test"})
    assert status == 200, body
    return body["prompt_id"]


def test_pack_imports_and_documents_every_node(comfy):
    log = comfy.log.read_text()
    assert "IMPORT FAILED" not in "\n".join(line for line in log.splitlines() if comfy.link_name in line), log[-3000:]
    info = comfy.get("/object_info")
    ours = {k: v for k, v in info.items() if k.startswith("A124_")}
    from node_env import import_pack

    assert set(ours) == set(import_pack().NODE_CLASS_MAPPINGS)
    for name, node in ours.items():
        assert node["category"].startswith("Animate124/") and node["description"]
        assert len(node["output_tooltips"]) == len(node["output"])
        for section in ("required", "optional"):
            for input_name, spec in node["input"].get(section, {}).items():
                assert spec[1].get("tooltip"), f"{name}.{input_name}"
    print(f"/object_info lists {len(ours)} Animate124 nodes, every input with a tooltip")


#: Runs under ComfyUI's interpreter in its folder: loads the pack with ComfyUI's own nodes.load_custom_node, first as
#: installed, then again (fresh modules) with diffusers made unimportable; prints what each load changed as JSON.
LOAD_PACK = """
import asyncio, json, logging, os, sys
import comfy.options
comfy.options.enable_args_parsing()
sys.argv = [sys.argv[0], "--cpu"]
import nodes

records = []
handler = logging.Handler()
handler.emit = lambda record: records.append(record.getMessage())
logging.getLogger().addHandler(handler)
pack = os.environ["A124_PACK"]


def load(tag):
    records.clear()
    before, known = list(sys.path), set(nodes.NODE_CLASS_MAPPINGS)
    ok = asyncio.run(nodes.load_custom_node(pack))
    ours = sorted(set(nodes.NODE_CLASS_MAPPINGS) - known)
    log = [r for r in records if "Animate124" in r]
    return {"ok": ok, "path_unchanged": sys.path == before, "nodes": ours, "log": log}


first = load("installed")
for name in [m for m in sys.modules if m == "a124_core" or m.startswith(("a124_core.", pack.replace(".", "_x_")))]:
    del sys.modules[name]
for name in [k for k in nodes.NODE_CLASS_MAPPINGS if k.startswith("A124_")]:
    del nodes.NODE_CLASS_MAPPINGS[name]
for name in [m for m in sys.modules if m == "diffusers" or m.startswith("diffusers.")]:
    del sys.modules[name]


class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "diffusers":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, Block())
print(json.dumps({"installed": first, "without_diffusers": load("without diffusers")}))
"""


def test_pack_loads_in_comfyui_without_touching_sys_path_even_without_diffusers(comfy):
    """ComfyUI's own loader: sys.path unchanged, every node registered, no warning; with diffusers unimportable one
    log line names it and the pip command, and every node still registers."""
    import os
    import subprocess

    from comfy_server import COMFYUI_PATH, _python_for_comfy

    env = dict(os.environ, A124_PACK=str(Path(COMFYUI_PATH) / "custom_nodes" / comfy.link_name), HF_HUB_OFFLINE="1")
    run = subprocess.run(
        [_python_for_comfy(), "-c", LOAD_PACK], cwd=COMFYUI_PATH, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-4000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    installed, missing = out["installed"], out["without_diffusers"]
    assert installed["ok"] and installed["path_unchanged"] and installed["log"] == []
    assert len(installed["nodes"]) >= 18
    assert missing["ok"] and missing["path_unchanged"] and missing["nodes"] == installed["nodes"]
    assert len(missing["log"]) == 1 and "-m pip install diffusers" in missing["log"][0], missing["log"]
    print("without diffusers:", missing["log"][0])


def test_full_workflow_then_render_only(comfy):
    started = time.time()
    entry = comfy.wait(submit(comfy, api("animate124_full")), timeout=600)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[-3000:]
    outputs = entry["outputs"]
    video = outputs["12"]["images"][0]
    assert video["subfolder"] == "animate124/videos" and video["filename"].endswith(".mp4")
    assert (comfy.root / "output" / video["subfolder"] / video["filename"]).is_file()
    scene = comfy.root / "output" / "animate124" / "scenes" / "animate124_refine_00001.safetensors"
    assert scene.is_file()
    # Orbit Render's VIDEO, saved by ComfyUI's own Save Video node (node 14): an h264 mp4 of the 3 rendered frames.
    saved = outputs["14"]["images"][0]
    assert saved["subfolder"] == "animate124/videos" and saved["filename"].startswith("animate124_animating_")
    from a124_core.outputs.export import read_video

    frames, fps = read_video(comfy.root / "output" / saved["subfolder"] / saved["filename"])
    assert frames.shape[:3] == (3, 24, 24) and fps == 25.0
    assert not outputs.get("13", {}).get("images")  # that render wrote no mp4 of its own
    print(f"full workflow: success in {time.time() - started:.1f} s")
    entry = comfy.wait(submit(comfy, api("animate124_render_only")), timeout=300)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[-3000:]
    assert len(entry["outputs"]) == 4


def test_animated_mesh_workflow_reaches_preview_3d_animation(comfy):
    """The deformation workflow on tiny priors: core Preview 3D - Animation receives our GLB (one morph target per
    frame, one clip), by a path relative to the output folder, as the frontend's viewer fetches it."""
    import pygltflib

    entry = comfy.wait(submit(comfy, api("animate124_animated_mesh")), timeout=600)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[-3000:]
    model_file = entry["outputs"]["12"]["result"][0]
    assert model_file.startswith("animate124/meshes/") and model_file.endswith(".glb")
    glb = pygltflib.GLTF2.load(str(comfy.root / "output" / model_file))
    assert len(glb.animations) == 1 and len(glb.meshes[0].primitives[0].targets) == 3


def test_bad_prompt_is_refused_with_node_errors(comfy):
    prompt = api("animate124_full")
    prompt["10"]["inputs"]["dynamic_scene"] = ["8", 0]  # a static scene into the refine node
    prompt["2"]["inputs"]["border_ratio"] = 0.9  # out of range
    status, body = comfy.post("/prompt", {"prompt": prompt})
    assert status == 400, body
    errors = body["node_errors"]
    assert errors["10"]["class_type"] == "A124_RefineStage"
    assert any("A124_SCENE_STATIC" in e["details"] for e in errors["10"]["errors"])
    assert errors["2"]["class_type"] == "A124_Reference"
    print("bad prompt: HTTP 400,", {k: [e["details"] for e in v["errors"]] for k, v in errors.items()})


def test_interrupt_leaves_a_checkpoint(comfy):
    prompt = static_smoke_prompt(steps=1_000_000, seed=7, run_name="interrupted")
    prompt["4"] = {"class_type": "A124_SaveScene", "inputs": {"scene": ["3", 0], "filename_prefix": "never"}}
    prompt_id = submit(comfy, prompt)
    end = time.time() + 120
    while not any(q[1] == prompt_id for q in comfy.get("/queue")["queue_running"]):
        assert time.time() < end, "the prompt never started"
        time.sleep(0.2)
    time.sleep(8)  # some training steps (how many depends on the machine)
    comfy.post("/interrupt", {"prompt_id": prompt_id})
    entry = comfy.wait(prompt_id, timeout=120)
    messages = [m[0] for m in entry["status"]["messages"]]
    assert "execution_interrupted" in messages, entry["status"]
    checkpoint = comfy.root / "output" / "animate124" / "checkpoints" / "interrupted" / "static_latest.safetensors"
    assert checkpoint.is_file()
    from safetensors import safe_open

    with safe_open(str(checkpoint), framework="pt") as f:
        meta = json.loads(f.metadata()["a124"])
    assert meta["stage"] == "static" and meta["training"] and 0 <= meta["step"] < 1_000_000
    print(f"interrupted at step {meta['step']}: {Path(checkpoint).name} written")


def test_comfy_loaders_variant_wires_into_comfyui_loaders(comfy):
    """Without real checkpoints only ComfyUI's own loaders fail validation (file not in list): the adapter nodes
    accept MODEL / CLIP / VAE / CONTROL_NET / CLIP_VISION from them."""
    status, body = comfy.post("/prompt", {"prompt": api("animate124_comfy_loaders")})
    assert status == 400, body
    failing = {v["class_type"] for v in body["node_errors"].values()}
    assert failing <= {"CheckpointLoaderSimple", "ControlNetLoader", "ImageOnlyCheckpointLoader"}, body["node_errors"]
    assert failing, body
    print("comfy-loaders variant: only", sorted(failing), "refused (no checkpoints in the test models folder)")


def test_animate_mesh_workflow_from_input_3d_ends_in_preview_3d(comfy):
    """Load 3D (a GLB in input/3d) -> Animate Mesh (tiny priors) -> Preview 3D - Animation, in real ComfyUI: the
    preview gets the written GLB, which is the input mesh with a morph target per frame and one clip."""
    import pygltflib

    from a124_core.gltf.accessors import read_accessor
    from tests.meshes.builder import build_test_mesh, write_glb

    mesh = build_test_mesh()
    (comfy.root / "input" / "3d").mkdir(exist_ok=True)
    write_glb(mesh, comfy.root / "input" / "3d" / "model.glb")
    prompt = api("animate124_animate_mesh")
    # What the frontend puts into Load 3D's canvas input when it queues: its captured views (any images here).
    views = dict.fromkeys(("image", "mask", "normal", "lineart"), "panda.png")
    prompt["1"]["inputs"]["image"] = {**views, "recording": "", "camera_info": {}}
    entry = comfy.wait(submit(comfy, prompt), timeout=600)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[-3000:]
    model_file = entry["outputs"]["5"]["result"][0]
    glb = pygltflib.GLTF2.load(str(comfy.root / "output" / model_file))
    [prim] = glb.meshes[0].primitives
    assert model_file.startswith("animate124/meshes/") and len(prim.targets) == 3 and len(glb.animations) == 1
    assert read_accessor(glb, prim.attributes.POSITION).shape == mesh.vertices.shape
    assert read_accessor(glb, prim.indices).size == mesh.faces.size
