"""Animate124's 4D grid (paper Eq. 1-2, SPEC 3): T time knots of the static grid, blended linearly in time.

Every knot starts as a copy of the static grid; the temporal TV over random points keeps neighbouring knots close.
Without correspondence over time, a scene exports as one marching-cubes mesh per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dfield
from pathlib import Path
from typing import Any, ClassVar

import torch

from ...fields.grid4d import Grid4DConfig, Grid4DField
from ...fields.static import FieldConfig, StaticField
from ...outputs.animated_mesh import AnimatedMeshConfig
from ...outputs.scene_export import ExportedMesh, export_frame_meshes
from ..terms.temporal_tv import TemporalTV, TemporalTVConfig
from .base import Representation, incompatible


@dataclass(frozen=True)
class Grid4D(Representation):
    """T copies of the static grid, linear in time, with the MLP shared over time."""

    name: ClassVar[str] = "grid4d"
    description: ClassVar[str] = "Animate124's 4D grid (the paper's); exports one mesh per frame"
    field_type: ClassVar[type] = Grid4DField
    keeps_correspondence: ClassVar[bool] = False
    resume_keys: ClassVar[tuple[str, ...]] = ("num_knots",)

    num_knots: int = 64
    """T, time grids of the 4D field."""
    temporal_tv: TemporalTVConfig = dfield(default_factory=TemporalTVConfig)
    """Temporal TV of the knots (weight 0.1 over 1e5 points)."""

    def __post_init__(self) -> None:
        if self.num_knots < 1:
            raise ValueError(f"num_knots must be >= 1, got {self.num_knots}")

    def build(self, static: StaticField) -> Grid4DField:
        return Grid4DField.from_static(static, self.num_knots, self.temporal_tv.points)

    def smoothness_term(self, stage_config: Any, video: Any = None) -> TemporalTV:
        return TemporalTV(self.temporal_tv)

    def metadata(self, field: Grid4DField) -> dict[str, Any]:
        return {"num_knots": field.num_knots, "tv_points": field.dynamic_config.tv_points}

    def from_metadata(self, field_config: FieldConfig, meta: dict[str, Any]) -> Grid4DField:
        return Grid4DField(Grid4DConfig(field_config, int(meta["num_knots"]), int(meta["tv_points"])))

    def continue_in_refine(self, field: Grid4DField) -> None:
        if field.num_knots != self.num_knots:
            raise incompatible("time knots (num_knots)", field.num_knots, self.num_knots)

    def export(
        self, field: Grid4DField, path: str | Path, config: AnimatedMeshConfig, device: str | torch.device = "cpu"
    ) -> ExportedMesh:
        return export_frame_meshes(field, path, config, device)


__all__ = ["Grid4D"]
