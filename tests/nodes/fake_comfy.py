"""Stand-ins for ComfyUI's `folder_paths`, `comfy.utils` and `comfy.model_management` (CI's test venvs have no
ComfyUI; its node API `comfy_api` comes from tests/comfy_stand_in).

They implement only what the nodes call, with ComfyUI's semantics: model folders by name, a progress bar whose
update is an interrupt point, and the interrupt flag the server sets on POST /interrupt.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import torch

FOLDERS = ("checkpoints", "configs", "controlnet", "diffusers", "embeddings", "clip", "rembg", "depth_models")


def make_folder_paths(models_dir: Path, output_dir: Path) -> types.ModuleType:
    fp = types.ModuleType("folder_paths")
    fp.models_dir = str(models_dir)
    fp.folder_names_and_paths = {name: ([str(models_dir / name)], {".safetensors"}) for name in FOLDERS}
    fp.folder_names_and_paths["diffusers"] = ([str(models_dir / "diffusers")], {"folder"})

    def get_folder_paths(name: str) -> list[str]:
        return list(fp.folder_names_and_paths[name][0])

    def get_filename_list(name: str) -> list[str]:
        out = []
        for root in get_folder_paths(name):
            base = Path(root)
            if base.is_dir():
                out += [
                    p.relative_to(base).as_posix()
                    for p in base.rglob("*")
                    if p.is_file() and p.suffix == ".safetensors"
                ]
        return sorted(out)

    def get_full_path(name: str, filename: str) -> str | None:
        for root in get_folder_paths(name):
            path = os.path.join(root, filename)
            if os.path.isfile(path):
                return path
        return None

    fp.get_folder_paths = get_folder_paths
    fp.get_filename_list = get_filename_list
    fp.get_full_path = get_full_path
    fp.get_output_directory = lambda: str(output_dir)
    fp.get_input_directory = lambda: str(output_dir.parent / "input")  # Load 3D's folder is input/3d
    return fp


class InterruptProcessingException(Exception):
    """ComfyUI's exception for a user interrupt."""


def make_comfy(interrupt_after: int | None = None) -> dict[str, types.ModuleType]:
    """`comfy`, `comfy.utils`, `comfy.model_management`; the interrupt flag goes up after N progress updates."""
    state = {"updates": 0, "interrupted": False, "previews": 0}
    mm = types.ModuleType("comfy.model_management")
    mm.InterruptProcessingException = InterruptProcessingException
    mm.get_torch_device = lambda: torch.device("cpu")
    mm.processing_interrupted = lambda: state["interrupted"]

    def throw_exception_if_processing_interrupted() -> None:
        if state["interrupted"]:
            state["interrupted"] = False
            raise InterruptProcessingException()

    mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted

    class ProgressBar:
        def __init__(self, total: int, node_id=None):
            self.total = total

        def update_absolute(self, value, total=None, preview=None):
            state["updates"] += 1
            state["previews"] += preview is not None
            if preview is not None:
                assert preview[0] == "JPEG" and preview[1].mode == "RGB"
            if interrupt_after is not None and state["updates"] >= interrupt_after:
                state["interrupted"] = True
            throw_exception_if_processing_interrupted()

    utils = types.ModuleType("comfy.utils")
    utils.ProgressBar = ProgressBar
    comfy = types.ModuleType("comfy")
    comfy.utils, comfy.model_management = utils, mm
    comfy.state = state
    return {"comfy": comfy, "comfy.utils": utils, "comfy.model_management": mm}


def install(monkeypatch, modules: dict[str, types.ModuleType]) -> None:
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
