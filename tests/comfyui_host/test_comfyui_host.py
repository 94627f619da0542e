"""Against a real ComfyUI (COMFYUI_PATH; CI: 0.8.0): the pack imports (without touching sys.path, and with a
dependency missing), /object_info documents every node exactly as the V3 schema stand-in the other tests use derives
it, every shipped API workflow is posted and runs on tiny priors (both mesh workflows end in Preview 3D with the GLB),
a bad prompt is refused with node_errors naming our node, and POST /interrupt during training leaves a checkpoint to
resume from."""

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


def shape_of(value):
    """JSON form with combo choices left out (the server and this process list different model folders)."""
    if isinstance(value, dict):
        return {k: ("<options>" if k == "options" else shape_of(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shape_of(v) for v in value]
    return value


def test_pack_imports_and_documents_every_node(comfy, monkeypatch):
    """Every node registers; its /object_info entry is what the schema stand-in (tests/comfy_stand_in) derives from
    the same define_schema: inputs with their options and tooltips, outputs, names, tooltips, output node."""
    import fake_comfy
    from node_env import import_pack, node_classes

    log = comfy.log.read_text()
    assert "IMPORT FAILED" not in "\n".join(line for line in log.splitlines() if comfy.link_name in line), log[-3000:]
    info = comfy.get("/object_info")
    ours = {k: v for k, v in info.items() if k.startswith("A124_")}
    stand_in = fake_comfy.make_folder_paths(comfy.root / "models", comfy.root / "output")
    monkeypatch.setitem(sys.modules, "folder_paths", stand_in)
    classes = node_classes(import_pack())
    assert set(ours) == set(classes)
    for name, node in ours.items():
        cls = classes[name]
        schema = cls.GET_SCHEMA()
        assert node["category"].startswith("Animate124/") and node["description"] == schema.description
        assert node["display_name"] == schema.display_name and node["output_node"] == schema.is_output_node
        assert node["output"] == cls.RETURN_TYPES and node["output_name"] == cls.RETURN_NAMES
        assert node["output_tooltips"] == cls.OUTPUT_TOOLTIPS and all(node["output_tooltips"])
        assert shape_of(node["input"]) == shape_of(json.loads(json.dumps(cls.INPUT_TYPES()))), name
        for section in ("required", "optional"):
            for input_name, spec in node["input"].get(section, {}).items():
                assert spec[1].get("tooltip"), f"{name}.{input_name}"
    print(f"/object_info lists {len(ours)} Animate124 nodes, each as the schema stand-in derives it")


#: Runs under ComfyUI's interpreter in its folder: loads the pack with ComfyUI's own nodes.load_custom_node, first as
#: installed, then again (fresh modules) with diffusers made unimportable; prints what each load changed as JSON.
LOAD_PACK = """
import asyncio, json, logging, os, sys
import comfy.options
comfy.options.enable_args_parsing()
sys.argv = [sys.argv[0], "--cpu"]
sys.argv += ["--base-directory", os.environ["A124_BASE"]]
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
    import subprocess

    from comfy_server import COMFYUI_PATH, _python_for_comfy, comfy_env

    pack = comfy.root / "custom_nodes" / comfy.link_name
    env = comfy_env(_python_for_comfy(), comfy.root) | {"A124_PACK": str(pack), "A124_BASE": str(comfy.root)}
    run = subprocess.run(
        [_python_for_comfy(), "-c", LOAD_PACK], cwd=COMFYUI_PATH, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-4000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    installed, missing = out["installed"], out["without_diffusers"]
    assert installed["ok"] and installed["path_unchanged"] and installed["log"] == []
    assert len(installed["nodes"]) >= 20
    assert missing["ok"] and missing["path_unchanged"] and missing["nodes"] == installed["nodes"]
    assert len(missing["log"]) == 1 and "-m pip install diffusers" in missing["log"][0], missing["log"]
    print("without diffusers:", missing["log"][0])


API_WORKFLOWS = sorted(p.name[: -len("_api.json")] for p in (REPO / "workflows").glob("*_api.json"))
#: Workflows that need files this machine cannot have: ComfyUI's own loaders detect SD1.5 / ControlNet / Stable
#: Zero123 from full-size weights (no tiny stand-in passes their model detection). Posting it is refused by exactly
#: those loaders; the test executor runs it end to end with stand-in loaders (tests/nodes/test_workflows.py).
NEEDS_FULL_SIZE_CHECKPOINTS = {"animate124_comfy_loaders"}


def test_every_shipped_api_workflow_is_posted(comfy):
    """Every workflows/*_api.json (with the tiny settings) is accepted by /prompt and runs to success, in the order
    that lets render-only read the scene the full pipeline saved."""
    order = sorted(API_WORKFLOWS, key=lambda n: (n == "animate124_render_only", n))
    for name in order:
        started = time.time()
        if name in NEEDS_FULL_SIZE_CHECKPOINTS:
            status, body = comfy.post("/prompt", {"prompt": api(name)})
            assert status == 400, body
            failing = {v["class_type"] for v in body["node_errors"].values()}
            # The SD1.5 checkpoint's file name is there (a tiny file): only the two missing files are refused.
            assert failing == {"ControlNetLoader", "ImageOnlyCheckpointLoader"}, body
            print(f"{name}: refused only by ComfyUI's loaders {sorted(failing)} (no full-size checkpoints here)")
            continue
        entry = comfy.wait(submit(comfy, api(name)), timeout=900)
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[-3000:]
        check_outputs(comfy, name, entry["outputs"])
        print(f"{name}: success in {time.time() - started:.1f} s")


def check_outputs(comfy, name: str, outputs: dict) -> None:
    """What each workflow must leave: videos, a scene file, and for the mesh workflows the GLB in Preview 3D."""
    from a124_core.outputs.export import read_video

    if name == "animate124_full":
        video = outputs["12"]["images"][0]
        assert video["subfolder"] == "animate124/videos" and video["filename"].endswith(".mp4")
        assert (comfy.root / "output" / video["subfolder"] / video["filename"]).is_file()
        assert (comfy.root / "output" / "animate124" / "scenes" / "animate124_refine_00001.safetensors").is_file()
        # Orbit Render's VIDEO, saved by ComfyUI's own Save Video node (node 14): an h264 mp4 of the 3 frames.
        saved = outputs["14"]["images"][0]
        assert saved["subfolder"] == "animate124/videos" and saved["filename"].startswith("animate124_animating_")
        frames, fps = read_video(comfy.root / "output" / saved["subfolder"] / saved["filename"])
        assert frames.shape[:3] == (3, 24, 24) and fps == 25.0
        assert not outputs.get("13", {}).get("images")  # that render wrote no mp4 of its own
    elif name == "animate124_render_only":
        assert len(outputs) == 4
    elif name in ("animate124_animated_mesh", "animate124_animate_mesh"):
        preview = {"animate124_animated_mesh": "12", "animate124_animate_mesh": "4"}[name]
        check_preview_3d(comfy, outputs[preview]["result"][0], mesh_input=name == "animate124_animate_mesh")


def check_preview_3d(comfy, model_file: str, mesh_input: bool) -> None:
    """ComfyUI's Preview 3D & Animation got a GLB by a path relative to the output folder, as its viewer fetches it:
    one morph target per frame, one clip; for Animate Mesh, the input mesh's own vertices and faces."""
    import pygltflib

    from a124_core.gltf.accessors import read_accessor
    from tests.meshes.builder import build_test_mesh

    assert model_file.startswith("animate124/meshes/") and model_file.endswith(".glb"), model_file
    glb = pygltflib.GLTF2.load(str(comfy.root / "output" / model_file))
    [prim] = glb.meshes[0].primitives
    assert len(glb.animations) == 1 and len(prim.targets) == 3
    if mesh_input:
        mesh = build_test_mesh()
        assert read_accessor(glb, prim.attributes.POSITION).shape == mesh.vertices.shape
        assert read_accessor(glb, prim.indices).size == mesh.faces.size


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
