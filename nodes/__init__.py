"""ComfyUI nodes of the pack, on the V3 node schema (`comfy_api.v0_0_2`). Each `nodes_<family>.py` holds one node
family; `NODES` lists every node class and `comfy_entrypoint` hands them to ComfyUI.

Node modules import ComfyUI's node API (`comfy_api`) at import and everything else of ComfyUI (`comfy.*`,
`folder_paths`) lazily inside functions.
"""

from __future__ import annotations

from comfy_api.v0_0_2 import ComfyExtension, io

from .nodes_comfy_adapters import (
    A124_ControlNetTilePriorFromComfy,
    A124_SD15PriorFromComfy,
    A124_Zero123PriorFromComfy,
)
from .nodes_evaluate import A124_Evaluate
from .nodes_load_scene import A124_LoadDynamicScene, A124_LoadStaticScene
from .nodes_meshes import A124_AnimateMesh, A124_ExportAnimatedMesh
from .nodes_priors import A124_LoadControlNetTilePrior, A124_LoadSD15Prior, A124_LoadVideoPrior, A124_LoadZero123Prior
from .nodes_reference import A124_Reference
from .nodes_render import A124_OrbitRender
from .nodes_save_scene import A124_SaveScene
from .nodes_stages import A124_CoarseStage, A124_RefineStage, A124_StaticStage
from .nodes_textual_inversion import A124_LoadEmbedding, A124_TextualInversion

NODES: list[type[io.ComfyNode]] = [
    A124_Reference,
    A124_LoadSD15Prior,
    A124_LoadZero123Prior,
    A124_LoadVideoPrior,
    A124_LoadControlNetTilePrior,
    A124_SD15PriorFromComfy,
    A124_ControlNetTilePriorFromComfy,
    A124_Zero123PriorFromComfy,
    A124_TextualInversion,
    A124_LoadEmbedding,
    A124_StaticStage,
    A124_CoarseStage,
    A124_RefineStage,
    A124_OrbitRender,
    A124_SaveScene,
    A124_LoadStaticScene,
    A124_LoadDynamicScene,
    A124_Evaluate,
    A124_ExportAnimatedMesh,
    A124_AnimateMesh,
]


class Animate124Extension(ComfyExtension):
    """The pack as ComfyUI's V3 extension."""

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> Animate124Extension:
    return Animate124Extension()


__all__ = ["NODES", "comfy_entrypoint"]
