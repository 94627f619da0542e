"""What one training step renders: the cameras, times, shading and background of a batch of frames.

Below the stage and the guidance terms, so both can name it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from ..cameras import Cameras


@dataclass
class View:
    """Everything that decides what B rendered frames look like (so a second model can see exactly the same)."""

    cameras: Cameras  # B cameras
    times: Tensor | None  # [B] frame times, None for static fields
    shading: str  # 'albedo' | 'lambertian' | 'textureless' | 'normal'
    light_dirs: Tensor | None  # [B, 3]
    ambient: float
    background: Tensor  # [3] one colour per step

    def select(self, frames: list[int] | tuple[int, ...]) -> View:
        idx = torch.as_tensor(list(frames), dtype=torch.long)
        return View(
            cameras=self.cameras[idx],
            times=None if self.times is None else self.times[idx],
            shading=self.shading,
            light_dirs=None if self.light_dirs is None else self.light_dirs[idx],
            ambient=self.ambient,
            background=self.background,
        )


class ViewSampler(Protocol):
    """How a stage draws the cameras (and times) of one SDS step."""

    #: Time of the reference view (None: a static field; 0.0: frame 0 of a dynamic one).
    reference_time: float | None

    def draw(self, stage: Any) -> tuple[View, bool]:
        """(the view, whether its frame 0 shows the reference image's moment); `stage` gives the generator,
        the config and `draw_view` (random shading, light and background)."""


class RenderFn(Protocol):
    """The stage's renderer as terms call it: `view` at `size` (a side or (H, W)); maps [B, H, W, C].

    `field` defaults to the scene being trained and `occupancy` to its grid ("scene"; None renders without one);
    `perturb` jitters samples along rays (from the stage's generator); `displacement` adds the composited
    displacement map (deformation fields)."""

    def __call__(
        self,
        view: View,
        size: int | tuple[int, int],
        field: Any = None,
        occupancy: Any = "scene",
        perturb: bool = True,
        displacement: bool = False,
    ) -> dict[str, Tensor]: ...


__all__ = ["RenderFn", "View", "ViewSampler"]
