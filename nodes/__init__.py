"""ComfyUI adapters. Each `nodes_<area>.py` module adds its classes to the mappings below.

Node modules import ComfyUI (`comfy.*`, `folder_paths`) lazily inside functions, so this package imports
without ComfyUI installed.
"""

from . import (
    nodes_comfy_adapters,
    nodes_meshes,
    nodes_outputs,
    nodes_priors,
    nodes_reference,
    nodes_stages,
    nodes_textual_inversion,
)

_MODULES = (
    nodes_reference,
    nodes_priors,
    nodes_comfy_adapters,
    nodes_textual_inversion,
    nodes_stages,
    nodes_outputs,
    nodes_meshes,
)

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
for _module in _MODULES:
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
