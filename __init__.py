"""ComfyUI entry point of the Animate124 node pack: makes the library importable, reports missing dependencies,
hands ComfyUI the nodes (V3 node schema: `comfy_entrypoint`).

ComfyUI imports this file as a package named after the pack's folder. The node modules import the library as
`a124_core`; it is registered under that name (unique to this pack) straight from its folder, so nothing is added to
sys.path: the pack folder's `nodes`, `tests`, `scripts` and `benchmarks` stay invisible to other custom nodes (ComfyUI
has its own top-level `nodes`). Dependencies are checked without importing them, so a missing one costs one log line
and the nodes still register: the graph loads and the failing node names what to install when it runs.
"""

import importlib.util
import logging
import sys
from pathlib import Path

_PACK = Path(__file__).resolve().parent
LIBRARY = "a124_core"
#: Import name -> distribution name of every runtime dependency in requirements.txt (torch comes with ComfyUI).
RUNTIME_DEPENDENCIES = {
    "diffusers": "diffusers",
    "transformers": "transformers",
    "safetensors": "safetensors",
    "accelerate": "accelerate",
    "numpy": "numpy",
    "PIL": "pillow",
    "imageio": "imageio",
    "imageio_ffmpeg": "imageio-ffmpeg",
    "skimage": "scikit-image",
    "pygltflib": "pygltflib",
    "trimesh": "trimesh",
    "scipy": "scipy",
    "fast_simplification": "fast-simplification",
}
_log = logging.getLogger("animate124")


def register_library() -> None:
    """Import `a124_core` from this pack's folder under its own name, unless that name is already taken."""
    existing = sys.modules.get(LIBRARY)
    if existing is not None:
        where = Path(getattr(existing, "__file__", None) or ".").resolve().parent
        if where != _PACK / LIBRARY:
            _log.warning("Animate124: %s is already imported from %s; the nodes use that copy.", LIBRARY, where)
        return
    spec = importlib.util.spec_from_file_location(
        LIBRARY, _PACK / LIBRARY / "__init__.py", submodule_search_locations=[str(_PACK / LIBRARY)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[LIBRARY] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[LIBRARY]
        raise


def missing_dependencies() -> list[str]:
    """Distribution names of the runtime dependencies that cannot be imported (found without importing them)."""
    missing = []
    for module, distribution in RUNTIME_DEPENDENCIES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package that fails, or a module set to None in sys.modules
            found = False
        if not found:
            missing.append(distribution)
    return missing


register_library()
if _missing := missing_dependencies():
    _log.warning(
        "Animate124: missing Python package%s %s; the nodes load but fail when run. Install with: %s -m pip install %s"
        " (or -r %s)",
        "s" if len(_missing) > 1 else "",
        ", ".join(_missing),
        sys.executable,
        " ".join(_missing),
        _PACK / "requirements.txt",
    )

from .nodes import NODES, comfy_entrypoint  # noqa: E402

__all__ = ["NODES", "comfy_entrypoint"]
