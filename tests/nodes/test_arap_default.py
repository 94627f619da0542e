"""The ARAP weight the library tuned (`ARAPTermConfig.weight`, docs/animate-mesh.md) is the one the Animate Mesh
node, `animate-mesh --help` and the shipped animate-mesh workflows use."""

from __future__ import annotations

import argparse
import json

from node_env import REPO, node_classes

from a124_core.animate_mesh_cli import add_parser
from a124_core.training.terms.arap import ARAPTermConfig


def test_node_cli_and_workflows_ship_the_tuned_arap_weight(pack, comfy_env):
    default = ARAPTermConfig().weight
    for name in ("A124_AnimateMesh", "A124_AnimateMeshFromVideo"):
        node = node_classes(pack)[name]
        assert node.INPUT_TYPES()["required"]["arap_weight"][1]["default"] == default, name
    sub = argparse.ArgumentParser().add_subparsers()
    add_parser(sub)
    assert f"default {default:g};" in " ".join(sub.choices["animate-mesh"].format_help().split())
    for name in ("animate124_animate_mesh", "animate124_mesh_from_video"):
        api = json.loads((REPO / "workflows" / f"{name}_api.json").read_text())
        assert [n["inputs"]["arap_weight"] for n in api.values() if "arap_weight" in n["inputs"]] == [default], name
