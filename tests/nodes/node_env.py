"""Paths and the pack import shared by the node tests (a plain module: `conftest` names collide across areas)."""

from __future__ import annotations

import importlib.util
import sys

from tests.paths import EXAMPLES, REPO  # noqa: F401  (re-exported to the node tests)


def import_pack():
    """The repository as the package `comfyui_animate124` (ComfyUI has its own top-level `nodes` module)."""
    if "comfyui_animate124" in sys.modules:
        return sys.modules["comfyui_animate124"]
    spec = importlib.util.spec_from_file_location(
        "comfyui_animate124", REPO / "__init__.py", submodule_search_locations=[str(REPO)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["comfyui_animate124"] = module
    spec.loader.exec_module(module)
    return module


def node_classes(pack) -> dict[str, type]:
    """{node id: class} of the pack's V3 nodes, as ComfyUI registers them from `comfy_entrypoint`."""
    return {cls.GET_SCHEMA().node_id: cls for cls in pack.NODES}
