"""The shipped workflow files: reproduced by scripts/build_workflows.py, readable (a group per step, a Note, no two
nodes overlapping on the canvas) and with download entries the frontend accepts for every single-file model."""

from __future__ import annotations

import itertools
import json
import re
import sys

import pytest
from node_env import REPO

sys.path.insert(0, str(REPO / "scripts"))
import build_workflows  # noqa: E402
from workflow_layout import NODE_TITLE_HEIGHT  # noqa: E402

NAMES = tuple(w.name for w in build_workflows.workflows())
#: The group a node of each class belongs to.
STEP_OF = {
    "A124_TextualInversion": "Step 0: textual inversion",
    "A124_StaticStage": "Step 1: static NeRF",
    "A124_CoarseStage": "Step 2: coarse dynamic",
    "A124_RefineStage": "Step 3: refine",
    "A124_OrbitRender": "Outputs",
    "A124_SaveScene": "Outputs",
    "SaveVideo": "Outputs",
}
#: Core loaders whose file the frontend can offer to download (widget value = file name in the directory).
CORE_LOADERS = {"CheckpointLoaderSimple": "checkpoints", "ControlNetLoader": "controlnet"}
CORE_LOADERS["ImageOnlyCheckpointLoader"] = "checkpoints"
#: ComfyUI frontend 1.27 (MissingModelsWarning): sources and suffixes it downloads, plus its whitelisted URLs.
ALLOWED_SOURCES = ("https://huggingface.co/", "https://civitai.com/")
ALLOWED_SUFFIXES = (".safetensors", ".sft")
WHITELISTED = {"https://huggingface.co/stabilityai/stable-zero123/resolve/main/stable_zero123.ckpt"}


def ui(name: str) -> dict:
    return json.loads((REPO / "workflows" / f"{name}.json").read_text())


def box(node: dict) -> tuple[float, float, float, float]:
    """The node's canvas rectangle (x0, y0, x1, y1) including the title bar above `pos`."""
    (x, y), (w, h) = node["pos"], node["size"]
    return x, y - NODE_TITLE_HEIGHT, x + w, y + h


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def inside(inner, outer) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def test_shipped_files_are_what_the_generator_writes(pack, comfy_env):
    files = build_workflows.build(pack.NODES)
    assert sorted(files) == sorted(p.name for p in (REPO / "workflows").glob("*.json"))  # every shipped file
    assert {"animate124_full", "animate124_zeroscope", "animate124_comfy_loaders", "animate124_render_only"} <= set(
        NAMES
    )
    for name, data in files.items():
        assert (REPO / "workflows" / name).read_text() == build_workflows.dump(data), (
            f"{name} differs from its description: run python scripts/build_workflows.py"
        )


@pytest.mark.parametrize("name", NAMES)
def test_groups_notes_and_no_overlap(name):
    workflow = ui(name)
    groups = {
        g["title"]: (
            g["bounding"][0],
            g["bounding"][1],
            g["bounding"][0] + g["bounding"][2],
            g["bounding"][1] + g["bounding"][3],
        )
        for g in workflow["groups"]
    }
    assert "Outputs" in groups and len(groups) == len(workflow["groups"])
    notes = [n for n in workflow["nodes"] if n["type"] == "Note"]
    assert len(notes) == 1 and notes[0]["widgets_values"][0].strip()
    for node in workflow["nodes"]:
        holders = [title for title, rect in groups.items() if inside(box(node), rect)]
        if node["type"] == "Note":
            assert holders == []
            continue
        assert len(holders) == 1, f"{name} #{node['id']} {node['type']} in groups {holders}"
        assert holders[0] == STEP_OF.get(node["type"], holders[0]), f"{name} #{node['id']} in {holders[0]}"
    for a, b in itertools.combinations(workflow["nodes"], 2):
        assert not overlap(box(a), box(b)), f"{name}: #{a['id']} {a['type']} overlaps #{b['id']} {b['type']}"
    for (ta, a), (tb, b) in itertools.combinations(groups.items(), 2):
        assert not overlap(a, b), f"{name}: groups {ta} and {tb} overlap"
    stages = {n["type"] for n in workflow["nodes"]} & {k for k, v in STEP_OF.items() if v.startswith("Step")}
    assert {STEP_OF[s] for s in stages} <= set(groups)


@pytest.mark.parametrize("name", NAMES)
def test_models_entries_are_downloadable_and_in_the_readme(name):
    """Each entry is what the frontend needs to offer a download: its name is the loader's widget value (the frontend
    ignores others), a real folder, an allowed source and suffix; and the README's model table lists the file."""
    readme_table = (REPO / "README.md").read_text().split("## In ComfyUI")[0]
    for node in ui(name)["nodes"]:
        entries = node["properties"].get("models", [])
        if node["type"] in CORE_LOADERS:
            (value,) = node["widgets_values"]
            assert [m["name"] for m in entries] == [value], f"{name} #{node['id']}: no download entry for {value}"
        for model in entries:
            assert set(model) == {"name", "url", "directory"}
            assert model["name"] in node["widgets_values"]
            assert model["directory"] == CORE_LOADERS[node["type"]]
            assert model["url"] in WHITELISTED or (
                model["url"].startswith(ALLOWED_SOURCES) and model["name"].endswith(ALLOWED_SUFFIXES)
            )
            assert re.fullmatch(
                r"https://huggingface\.co/[\w.-]+/[\w.-]+/resolve/main/(.+/)?" + re.escape(model["name"]), model["url"]
            )
            assert f"{model['directory']}/{model['name']}" in readme_table, f"README table lacks {model['name']}"
