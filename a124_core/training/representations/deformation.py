"""Dream-in-4D's deformation field (SPEC 13): the static field frozen as the canonical scene, warped by a 4D hash
grid + MLP over (x, y, z, t).

A point keeps its identity over time, so a scene exports as one canonical mesh with a morph target per frame and
a user's own mesh can be animated with it. Its smoothness term is the TV of rendered displacement videos.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dfield
from pathlib import Path
from typing import Any, ClassVar

import torch

from ...fields.deformation import DeformationConfig, DeformationField
from ...fields.deformation_losses import DisplacementTVConfig
from ...fields.static import FieldConfig, StaticField
from ...outputs.animated_mesh import AnimatedMeshConfig
from ...outputs.scene_export import ExportedMesh, export_morph_targets
from ..terms.displacement_tv import DisplacementTV
from .base import Representation


@dataclass(frozen=True)
class Deformation(Representation):
    """A frozen canonical StaticField plus a displacement network (zero at the start: the canonical scene exactly)."""

    name: ClassVar[str] = "deformation"
    description: ClassVar[str] = (
        "Dream-in-4D's deformation field (the static scene frozen and warped); exports one mesh with morph targets"
    )
    field_type: ClassVar[type] = DeformationField
    keeps_correspondence: ClassVar[bool] = True
    resume_keys: ClassVar[tuple[str, ...]] = ("deformation_config",)

    deformation: DeformationConfig = dfield(default_factory=DeformationConfig)
    """The deformation network and its level schedule."""
    displacement_tv: DisplacementTVConfig = dfield(default_factory=DisplacementTVConfig)
    """TV of rendered displacement videos (weight 1000)."""

    def build(self, static: StaticField) -> DeformationField:
        return DeformationField.from_static(static, self.deformation)

    def smoothness_term(self, stage_config: Any) -> DisplacementTV:
        return DisplacementTV(self.displacement_tv, stage_config.render.bound)

    def metadata(self, field: DeformationField) -> dict[str, Any]:
        return {"deformation_config": field.deformation_config.to_dict()}

    def from_metadata(self, field_config: FieldConfig, meta: dict[str, Any]) -> DeformationField:
        return DeformationField(field_config, DeformationConfig.from_dict(meta["deformation_config"]))

    def continue_in_refine(self, field: DeformationField) -> None:
        return None

    def export(
        self,
        field: DeformationField,
        path: str | Path,
        config: AnimatedMeshConfig,
        device: str | torch.device = "cpu",
    ) -> ExportedMesh:
        return export_morph_targets(field, path, config, device)


__all__ = ["Deformation"]
