"""Stand-in of `comfy_api.v0_0_2`: `io` (node schema), `ui` (UI outputs), `ComfyExtension`, `InputImpl`, `Types`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction

import torch

from . import io, ui  # noqa: F401


class ComfyExtension(ABC):
    """What `comfy_entrypoint()` returns: the extension's node classes."""

    @abstractmethod
    async def get_node_list(self) -> list[type[io.ComfyNode]]: ...


@dataclass
class VideoComponents:
    """Types.VideoComponents: frames [N, H, W, 3] in [0, 1] and an exact frame rate."""

    images: torch.Tensor
    frame_rate: Fraction
    audio: dict | None = None
    metadata: dict | None = None


class VideoFromComponents:
    """InputImpl.VideoFromComponents: what Save Video and Get Video Components read."""

    def __init__(self, components: VideoComponents):
        self._components = components

    def get_components(self) -> VideoComponents:
        return VideoComponents(self._components.images, self._components.frame_rate, self._components.audio)

    def get_dimensions(self) -> tuple[int, int]:
        """(width, height), as VideoInput.get_dimensions."""
        return self._components.images.shape[2], self._components.images.shape[1]


class MESH:
    """Types.MESH: vertices [B, V, 3], faces [B, F, 3]."""

    def __init__(self, vertices: torch.Tensor, faces: torch.Tensor):
        self.vertices = vertices
        self.faces = faces


class InputImpl:
    VideoFromComponents = VideoFromComponents


class Types:
    VideoComponents = VideoComponents
    MESH = MESH
