"""ComfyUI adapters. Each `nodes_<area>.py` module adds its classes to the mappings below.

Node modules import ComfyUI (`comfy.*`, `folder_paths`) lazily inside functions, so this package imports
without ComfyUI installed.
"""

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
