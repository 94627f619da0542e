"""ComfyUI's own frontend (the server's comfyui-frontend-package, in headless Chromium) loads every UI workflow: no
missing node types, the step groups and the Note present, no two nodes overlapping once the frontend has sized them,
the prompt it would queue equal to the `_api.json` twin, and the download offer for the single-file models."""

from __future__ import annotations

import itertools
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser  # noqa: E402
from comfy_server import REPO, requires_comfyui  # noqa: E402

pytestmark = [pytest.mark.comfyui, requires_comfyui]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
sys.path.insert(0, str(REPO / "scripts"))
from build_workflows import CORE_NODES, workflows  # noqa: E402

NAMES = tuple(w.name for w in workflows())

LOAD = """
(async () => {
  const workflow = %s;
  document.querySelectorAll(".p-dialog-close-button").forEach((button) => button.click());  // the last load's
  await new Promise((resolve) => setTimeout(resolve, 300));
  await app.loadGraphData(workflow);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const rect = (r) => Array.from(r);
  return {
    nodes: app.graph.nodes.map((n) => ({id: n.id, type: n.type, rect: rect(n.boundingRect)})),
    groups: app.graph.groups.map((g) => ({title: g.title, rect: rect(g.boundingRect ?? g._bounding)})),
    unknown: app.graph.nodes.filter((n) => !(n.type in LiteGraph.registered_node_types)).map((n) => n.type),
    prompt: (await app.graphToPrompt()).output,
    dialog: Array.from(document.querySelectorAll(".comfy-missing-models")).map((e) => e.innerText).join("\\n"),
  };
})()
"""


def overlap(a, b) -> bool:
    """[x, y, w, h] rectangles share area."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def inside(a, b) -> bool:
    return b[0] <= a[0] and b[1] <= a[1] and a[0] + a[2] <= b[0] + b[2] and a[1] + a[3] <= b[1] + b[3]


@pytest.fixture(scope="module")
def frontend(comfy):
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    browser = Browser(CHROMIUM)
    try:
        browser.open(comfy.url + "/")
        browser.wait_for("!!(window.app && app.graph && LiteGraph.registered_node_types['A124_OrbitRender'])", 300)
        yield browser
    finally:
        browser.close()


@pytest.mark.parametrize("name", NAMES)
def test_frontend_loads_the_workflow_readably(frontend, name):
    workflow = (REPO / "workflows" / f"{name}.json").read_text()
    seen = frontend.evaluate(LOAD % workflow)
    assert seen["unknown"] == []
    groups = {g["title"]: g["rect"] for g in seen["groups"]}
    assert "Outputs" in groups and len(groups) == len(json.loads(workflow)["groups"])
    notes = [n for n in seen["nodes"] if n["type"] == "Note"]
    assert len(notes) == 1
    for node in seen["nodes"]:
        holders = [title for title, rect in groups.items() if inside(node["rect"], rect)]
        assert len(holders) == (0 if node["type"] == "Note" else 1), f"#{node['id']} {node['type']} in {holders}"
    for a, b in itertools.combinations(seen["nodes"], 2):
        assert not overlap(a["rect"], b["rect"]), f"#{a['id']} {a['type']} overlaps #{b['id']} {b['type']}"
    # What the frontend would queue is the API twin (the Note is not part of it).
    api = json.loads((REPO / "workflows" / f"{name}_api.json").read_text())
    # Widgets only the frontend has (Load 3D's buttons and canvas, Preview 3D's viewer) are queued too; the server
    # ignores them and the API twin leaves them out (the canvas value exists only once a browser has drawn it).
    ui_only = {name: {s.name for s in spec.inputs if s.ui_only} for name, spec in CORE_NODES.items()}
    queued = {
        k: {
            "class_type": v["class_type"],
            "inputs": {i: x for i, x in v["inputs"].items() if i not in ui_only.get(v["class_type"], ())},
        }
        for k, v in seen["prompt"].items()
    }
    assert queued == {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in api.items()}
    if name == "animate124_comfy_loaders":
        # The test models folder has the SD1.5 checkpoint, not the other two: the frontend offers those, no error.
        dialog = seen["dialog"]
        assert "checkpoints / stable_zero123.ckpt" in dialog, dialog
        assert "controlnet / control_v11f1e_sd15_tile_fp16.safetensors" in dialog, dialog
        assert "v1-5-pruned-emaonly" not in dialog
        assert not any(e in dialog for e in ("not allowed", "Only allowed suffixes", "Invalid directory")), dialog
    print(f"{name}: {len(seen['nodes'])} nodes in {len(groups)} groups, none overlapping; prompt = API twin")
