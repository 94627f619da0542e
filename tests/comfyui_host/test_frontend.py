"""ComfyUI's own frontend in headless Chromium loads every UI workflow, in two frontends: the one ComfyUI pins
(comfyui-frontend-package from its requirements) and the newest release (a folder given in
$COMFYUI_NEWEST_FRONTEND, served with --front-end-root). Each load: no missing node types and no dialog other than
the expected download offer, the step groups and the Note present, no two nodes overlapping once the frontend has
sized them, and the prompt it would queue equal to the `_api.json` twin. Then the animate-mesh workflow is queued from
the page on tiny priors and Preview 3D & Animation is shown holding the animated GLB (a screenshot is saved to
$A124_SCREENSHOT_DIR when set)."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import sys
import time
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
  const CLOSE = ".p-dialog-close-button, .p-dialog-header-close, .p-dialog button[aria-label=Close]";
  const workflow = %s;
  document.querySelectorAll(CLOSE).forEach((button) => button.click());  // the last load's
  document.dispatchEvent(new KeyboardEvent("keydown", {key: "Escape", bubbles: true}));
  await new Promise((resolve) => setTimeout(resolve, 1500));  // past the closing animation
  await app.loadGraphData(workflow);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const rect = (r) => Array.from(r);
  return {
    nodes: app.graph.nodes.map((n) => ({id: n.id, type: n.type, rect: rect(n.boundingRect)})),
    groups: app.graph.groups.map((g) => ({title: g.title, rect: rect(g.boundingRect ?? g._bounding)})),
    unknown: app.graph.nodes.filter((n) => !(n.type in LiteGraph.registered_node_types)).map((n) => n.type),
    prompt: (await app.graphToPrompt()).output,
    dialogs: Array.from(document.querySelectorAll(".p-dialog, [role=dialog]"))
      .filter((e) => e.offsetParent !== null)
      .map((e) => e.innerText.slice(0, 1000)),
  };
})()
"""
FRONTENDS = ("pinned", "newest")


def overlap(a, b) -> bool:
    """[x, y, w, h] rectangles share area."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def inside(a, b) -> bool:
    return b[0] <= a[0] and b[1] <= a[1] and a[0] + a[2] <= b[0] + b[2] and a[1] + a[3] <= b[1] + b[3]


@pytest.fixture(scope="module", params=FRONTENDS)
def frontend(request, comfy):
    """(browser on a page of a server with that frontend, the server)."""
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    server = comfy
    if request.param == "newest":
        root = os.environ.get("COMFYUI_NEWEST_FRONTEND")
        if not root:
            pytest.skip("COMFYUI_NEWEST_FRONTEND is not set (a comfyui-frontend-package static folder)")
        server = comfy.start_another("newest-frontend", front_end_root=os.path.abspath(root))
    # A new user's first visit opens the templates browser over the canvas; this one has seen it.
    server.post("/settings/Comfy.TutorialCompleted", True)
    browser = Browser(CHROMIUM)
    try:
        browser.open(server.url + "/")
        browser.wait_for("!!(window.app && app.graph && LiteGraph.registered_node_types['A124_OrbitRender'])", 300)
        browser.version = browser.evaluate("window.__COMFYUI_FRONTEND_VERSION__ ?? ''")
        browser.kind = request.param
        yield browser, server
    finally:
        browser.close()


@pytest.mark.parametrize("name", NAMES)
def test_frontend_loads_the_workflow_readably(frontend, name):
    frontend, _ = frontend
    workflow = (REPO / "workflows" / f"{name}.json").read_text()
    seen = frontend.evaluate(LOAD % workflow)
    assert seen["unknown"] == []
    # No missing-node or replacement prompt; only the comfy-loaders workflow opens a dialog: its download offer.
    if name != "animate124_comfy_loaders":
        assert seen["dialogs"] == [], f"frontend {frontend.version}: {seen['dialogs']}"
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
        # (The newest frontend shows no dialog for missing models when it loads a workflow.)
        if not seen["dialogs"] and frontend.kind == "newest":
            print(f"frontend {frontend.version}: {name}: no missing-models dialog")
            return
        (dialog,) = seen["dialogs"]
        assert "stable_zero123.ckpt" in dialog and "control_v11f1e_sd15_tile_fp16.safetensors" in dialog, dialog
        assert "v1-5-pruned-emaonly" not in dialog
        assert not any(e in dialog for e in ("not allowed", "Only allowed suffixes", "Invalid directory")), dialog
    print(f"frontend {frontend.version}: {name}: {len(seen['nodes'])} nodes in {len(groups)} groups, no dialog")


#: The animate-mesh workflow with tiny settings, queued from the page so the viewer gets the result.
RUN_ANIMATE_MESH = """
(async () => {
  const CLOSE = ".p-dialog-close-button, .p-dialog-header-close, .p-dialog button[aria-label=Close]";
  document.querySelectorAll(CLOSE).forEach((button) => button.click());
  await app.loadGraphData(%s);
  const set = (id, name, value) => { app.graph.getNodeById(id).widgets.find((w) => w.name === name).value = value; };
  set(3, "preset", "smoke"); set(3, "frames", %d); set(3, "fps", %f);
  await app.queuePrompt(0, 1);
  return true;
})()
"""
#: The Preview 3D node in view (its viewer and controls), then what its widget shows.
SHOW_PREVIEW = """
(async () => {
  const node = app.graph.getNodeById(4);
  node.size = [700, 560];
  app.canvas.ds.scale = 1.0;
  app.canvas.ds.offset = [-node.pos[0] + 450, -node.pos[1] + 120];
  app.canvas.setDirty(true, true);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const element = node.widgets.map((w) => w.element).find((e) => e) ?? document.body;
  const timeline = document.body.innerText.match(/(\\d+\\.\\d+)s\\s*\\/\\s*(\\d+\\.\\d+)s/);
  return {
    clip_seconds: timeline ? Number(timeline[2]) : null,
    model_file: node.widgets.find((w) => w.name === "model_file")?.value,
    canvases: element.querySelectorAll("canvas").length,
    text: element.innerText.slice(0, 400),
    sliders: Array.from(document.querySelectorAll("input[type=range], [role=slider]"))
      .map((e) => [e.getAttribute("aria-valuenow") ?? e.value, e.getAttribute("aria-valuemax") ?? e.max]),
    buttons: Array.from(element.querySelectorAll("button"))
      .map((b) => b.title || b.getAttribute("aria-label") || b.innerText),
  };
})()
"""


def test_preview_3d_holds_the_animated_glb(frontend):
    """Queued from the page on tiny priors (16 morph targets at 8 fps: a 2 s clip), Animate Mesh's GLB reaches
    Preview 3D & Animation in this frontend: the viewer draws, and its animation controls are there."""
    browser, server = frontend
    frames, fps = 16, 8.0
    workflow = (REPO / "workflows" / "animate124_animate_mesh.json").read_text()
    before = set(server.get("/history"))
    browser.evaluate(RUN_ANIMATE_MESH % (workflow, frames, fps))
    end = time.time() + 900
    while not (set(server.get("/history")) - before):
        assert time.time() < end, "the queued workflow never finished"
        time.sleep(1)
    (entry,) = [server.get("/history")[k] for k in set(server.get("/history")) - before]
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[-3000:]
    model_file = entry["outputs"]["4"]["result"][0]
    shown = browser.evaluate(SHOW_PREVIEW)
    shot = browser.send("Page.captureScreenshot", {"format": "png"}, browser.session, timeout=60)["data"]
    folder = os.environ.get("A124_SCREENSHOT_DIR")
    if folder:
        path = Path(folder) / f"preview3d-{browser.version or 'frontend'}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot))
        print(f"screenshot: {path}")
    assert shown["canvases"] >= 1, shown
    # The viewer's animation controls (a timeline slider) hold the GLB's clip: 16 frames at 8 fps; frontends that
    # print the times show "0.0s / 2.0s".
    assert shown["sliders"] and shown["clip_seconds"] in (None, frames / fps), shown
    print(f"frontend {browser.version}: Preview 3D shows {model_file}: {json.dumps(shown)[:600]}")
