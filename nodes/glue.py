"""What every node module shares: wire types, ComfyUI folders, the training context and progress callbacks.

ComfyUI (`folder_paths`, `comfy.*`) is imported inside functions only, so this package imports without it (CI
runs the nodes with a stand-in `folder_paths` module). Without `comfy` the progress bar and interrupt checks
are skipped and training runs on the CPU.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from a124_core.priors.base import PriorKind

CATEGORY = "Animate124"

#: The kind of a prior is part of its wire type, so a prior of the wrong kind cannot pass validation.
PRIOR_TYPES = {
    PriorKind.IMAGE_TEXT: "A124_PRIOR_IMAGE_TEXT",
    PriorKind.IMAGE_POSE: "A124_PRIOR_IMAGE_POSE",
    PriorKind.VIDEO_TEXT: "A124_PRIOR_VIDEO_TEXT",
    PriorKind.IMAGE_CONTROL: "A124_PRIOR_IMAGE_CONTROL",
}
REFERENCE = "A124_REFERENCE"
EMBEDDING = "A124_EMBEDDING"
#: Scenes come as wire types by stage, so a static scene cannot be wired into a node that needs a dynamic one and a
#: refined scene cannot become the refine stage's condition (it must be the coarse one, SPEC 5).
SCENE_STATIC = "A124_SCENE_STATIC"
SCENE_DYNAMIC = "A124_SCENE_DYNAMIC"
SCENE_REFINED = "A124_SCENE_REFINED"
SCENE_ANY_DYNAMIC = f"{SCENE_DYNAMIC},{SCENE_REFINED}"
SCENE_ANY = f"{SCENE_STATIC},{SCENE_DYNAMIC},{SCENE_REFINED}"

#: Sub-folder of ComfyUI's output folder for everything the pack writes.
OUTPUT_SUBFOLDER = "animate124"
#: ComfyUI model folder registered by the pack (models/animate124): priors, configs, scenes.
MODEL_FOLDER = "animate124"
#: Files a ComfyUI model folder of ours lists (folders are listed separately).
MODEL_EXTENSIONS = {".safetensors"}


# ----------------------------------------------------------------------------------------------- ComfyUI folders
def folder_paths() -> Any:
    """ComfyUI's `folder_paths` module (a stand-in in tests); registers the `animate124` folder once."""
    import folder_paths as fp

    if MODEL_FOLDER not in fp.folder_names_and_paths or not fp.folder_names_and_paths[MODEL_FOLDER][1]:
        default = os.path.join(fp.models_dir, MODEL_FOLDER)
        paths = fp.folder_names_and_paths.get(MODEL_FOLDER, ([], set()))[0]
        if default not in paths:
            paths.insert(0, default)
        fp.folder_names_and_paths[MODEL_FOLDER] = (paths, set(MODEL_EXTENSIONS))
    return fp


def _search_paths(folder: str) -> list[str]:
    fp = folder_paths()
    return fp.get_folder_paths(folder) if folder in fp.folder_names_and_paths else []


def list_model_dirs(folders: tuple[str, ...], marker: tuple[str, ...]) -> list[str]:
    """Entries "<folder>/<name>" for sub-folders (one level, or two under animate124) holding any of `marker`."""
    found: list[str] = []
    for folder in folders:
        for root in _search_paths(folder):
            base = Path(root)
            if not base.is_dir():
                continue
            candidates = [p for p in base.iterdir() if p.is_dir()]
            candidates += [q for p in candidates for q in p.iterdir() if q.is_dir()] if folder == MODEL_FOLDER else []
            for cand in sorted(candidates):
                if any((cand / m).exists() for m in marker):
                    found.append(f"{folder}/{cand.relative_to(base).as_posix()}")
    return sorted(dict.fromkeys(found))


def list_model_files(folders: tuple[str, ...], suffixes: tuple[str, ...] = (".safetensors",)) -> list[str]:
    """Entries "<folder>/<file>" for model files ComfyUI lists in `folders`."""
    fp = folder_paths()
    found = []
    for folder in folders:
        if folder in fp.folder_names_and_paths:
            found += [f"{folder}/{name}" for name in fp.get_filename_list(folder) if name.endswith(suffixes)]
    return sorted(dict.fromkeys(found))


def resolve_entry(entry: str, what: str) -> Path:
    """ "<folder>/<relative path>" -> an existing path; the error names the folders searched."""
    folder, _, rel = entry.partition("/")
    if not rel:
        raise ValueError(f"{what}: {entry!r} is not a '<folder>/<name>' entry; pick one from the list.")
    roots = _search_paths(folder)
    for root in roots:
        path = Path(root) / rel
        if path.exists():
            return path
    raise FileNotFoundError(
        f"{what}: {rel!r} not found in the ComfyUI '{folder}' folders searched: {', '.join(roots) or '(none)'}. "
        f"Put the model there (see docs/nodes.md) and refresh."
    )


def output_dir(*parts: str) -> Path:
    """<ComfyUI output>/animate124/<parts>, created."""
    path = Path(folder_paths().get_output_directory(), OUTPUT_SUBFOLDER, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_output_file(name: str, what: str) -> Path:
    """An absolute path, or one relative to <output>/animate124 (how checkpoints and scenes are named)."""
    path = Path(name.strip()).expanduser()
    if not path.is_absolute():
        path = Path(folder_paths().get_output_directory(), OUTPUT_SUBFOLDER, path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} {name!r} not found (looked for {path}); give a path relative to output/animate124."
        )
    return path


# ----------------------------------------------------------------------------------------------- devices, training
def torch_device() -> torch.device:
    """ComfyUI's compute device (honours --cpu); CPU when ComfyUI is absent."""
    try:
        import comfy.model_management as mm
    except ImportError:
        return torch.device("cpu")
    return torch.device(mm.get_torch_device())


@contextlib.contextmanager
def training_mode() -> Iterator[None]:
    """ComfyUI runs nodes under inference mode; training needs autograd and tensors that are not inference tensors."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def clone_tree(value: Any) -> Any:
    """A deep copy made outside inference mode (inputs are never changed in place; inference tensors become normal)."""
    with torch.inference_mode(False):
        return copy.deepcopy(value) if not isinstance(value, Tensor) else value.clone()


def image_to_pil(image: Tensor) -> Image.Image:
    """[H, W, 3] in [0, 1] -> PIL RGB (previews)."""
    arr = (image.detach().float().clamp(0, 1) * 255).round().byte().cpu().numpy().astype(np.uint8)
    return Image.fromarray(arr, mode="RGB")


class Progress:
    """ComfyUI progress bar + preview + interrupt check, as the library runner's `Callbacks`.

    `should_cancel` lets the runner write a checkpoint before stopping; when ComfyUI's interrupt is raised by the
    progress bar itself, the runner writes the checkpoint before it propagates.
    """

    def __init__(self, total: int):
        self.total = total
        try:
            import comfy.model_management as mm
            import comfy.utils
        except ImportError:
            self.bar, self.mm = None, None
        else:
            self.bar, self.mm = comfy.utils.ProgressBar(total), mm

    def should_cancel(self) -> bool:
        return bool(self.mm is not None and self.mm.processing_interrupted())

    def raise_interrupt(self) -> None:
        """Turn the library's cancellation into ComfyUI's interrupt (clears the flag)."""
        if self.mm is not None:
            self.mm.throw_exception_if_processing_interrupted()

    def update(self, step: int, total: int, losses: dict[str, float], preview: Tensor | None) -> None:
        """Signature of `a124_core.training.runner.Callbacks.on_progress`."""
        if self.bar is not None:
            shown = None if preview is None else ("JPEG", image_to_pil(preview), 512)
            self.bar.update_absolute(step, total, shown)

    def callbacks(self) -> Any:
        from a124_core.training.runner import Callbacks

        return Callbacks(on_progress=self.update, should_cancel=self.should_cancel)


def ui_files(paths: list[Path], animated: bool = False) -> dict[str, Any]:
    """The `ui` dict that makes ComfyUI preview files written under its output folder."""
    base = Path(folder_paths().get_output_directory()).resolve()
    items = []
    for path in paths:
        rel = Path(path).resolve().relative_to(base)
        items.append({"filename": rel.name, "subfolder": rel.parent.as_posix(), "type": "output"})
    ui: dict[str, Any] = {"images": items}
    if animated:
        ui["animated"] = (True,)
    return ui
