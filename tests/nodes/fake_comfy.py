"""Stand-ins for ComfyUI's `folder_paths`, `comfy.utils`, `comfy.model_management` and `comfy_api.latest` (CI has
no ComfyUI).

They implement only what the nodes call, with ComfyUI's semantics: model folders by name, a progress bar whose
update is an interrupt point, the interrupt flag the server sets on POST /interrupt, and the VIDEO type
(`InputImpl.VideoFromComponents` over `Types.VideoComponents`, as in ComfyUI 0.3.64's comfy_api).
"""

from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass
from fractions import Fraction
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
    return {"comfy": comfy, "comfy.utils": utils, "comfy.model_management": mm, **make_comfy_api()}


@dataclass
class VideoComponents:
    """comfy_api.latest.Types.VideoComponents: frames [N, H, W, 3] in [0, 1] and an exact frame rate."""

    images: torch.Tensor
    frame_rate: Fraction
    audio: dict | None = None
    metadata: dict | None = None


class VideoFromComponents:
    """comfy_api.latest.InputImpl.VideoFromComponents: what Save Video and Get Video Components read."""

    def __init__(self, components: VideoComponents):
        self._components = components

    def get_components(self) -> VideoComponents:
        return VideoComponents(self._components.images, self._components.frame_rate, self._components.audio)

    def get_dimensions(self) -> tuple[int, int]:
        """(width, height), as VideoInput.get_dimensions."""
        return self._components.images.shape[2], self._components.images.shape[1]


def make_comfy_api() -> dict[str, types.ModuleType]:
    """`comfy_api` and `comfy_api.latest` with the two VIDEO classes the nodes build."""
    latest = types.ModuleType("comfy_api.latest")
    latest.InputImpl = types.SimpleNamespace(VideoFromComponents=VideoFromComponents)
    latest.Types = types.SimpleNamespace(VideoComponents=VideoComponents)
    api = types.ModuleType("comfy_api")
    api.latest = latest
    return {"comfy_api": api, "comfy_api.latest": latest}


def install(monkeypatch, modules: dict[str, types.ModuleType]) -> None:
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
