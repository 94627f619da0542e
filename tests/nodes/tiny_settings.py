"""The tiny-model settings CI applies to a bundled API workflow (the graph and every other value stay as shipped).

Shared by the executor tests (tests/nodes) and the real-ComfyUI host tests (tests/comfyui_host).
"""

from __future__ import annotations

import copy

TINY = {
    "A124_StaticStage": {"preset": "smoke"},
    "A124_CoarseStage": {"preset": "smoke"},
    "A124_RefineStage": {"preset": "smoke"},
    "A124_TextualInversion": {"steps": 2, "batch_size": 2},
    "A124_OrbitRender": {"views": 2, "frames": 3, "resolution": 24},
    "A124_ExportAnimatedMesh": {"frames": 3, "resolution": 32, "target_faces": 0},
    "A124_AnimateMesh": {"preset": "smoke", "steps": 2, "frames": 3},
    "A124_SD15PriorFromComfy": {"image_size": 32},
    "A124_Zero123PriorFromComfy": {"image_size": 32},
}


def tiny(prompt: dict) -> dict:
    """A copy of an API prompt with TINY applied; every overridden input must exist in the workflow."""
    prompt = copy.deepcopy(prompt)
    for entry in prompt.values():
        for key, value in TINY.get(entry["class_type"], {}).items():
            assert key in entry["inputs"], f"{entry['class_type']} has no input {key}"
            entry["inputs"][key] = value
    return prompt
