"""Dream-in-4D's deformation field (SPEC 13): the static field frozen as the canonical scene, warped by a 4D hash
grid + MLP over (x, y, z, t).

A point keeps its identity over time, so a scene exports as one canonical mesh with a morph target per frame and
a user's own mesh can be animated with it. Its video term is Dream-in-4D's (one-step x0 latent + decoded-RGB loss on
static-camera clips, `terms/video_x0.py`) unless `video` is None (then Animate124's video SDS and clip sampling);
its smoothness term is the TV of rendered displacement videos, weighted by the video term's phase. A refine stage
continues the coarse field with every learned grid level and trains the canonical colour (`refine_canonical`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from dataclasses import field as dfield
from pathlib import Path
from typing import Any, ClassVar

import torch

from ...config_io import config_from_dict
from ...fields.deformation import DeformationConfig, DeformationField
from ...fields.deformation_losses import DisplacementTVConfig
from ...fields.static import FieldConfig, StaticField
from ...outputs.animated_mesh import AnimatedMeshConfig
from ...outputs.scene_export import ExportedMesh, export_morph_targets
from ..terms.base import GuidanceTerm
from ..terms.displacement_tv import DisplacementTV
from ..terms.video_x0 import DreamIn4DVideo, DreamIn4DVideoConfig
from .base import Representation, incompatible
from .static_clips import StaticCameraClips


def _video_from_dict(value: Any) -> DreamIn4DVideoConfig | None:
    return None if value is None else config_from_dict(DreamIn4DVideoConfig, value)


#: What a refine stage trains of the canonical field: nothing, its colour (density frozen), or all of it.
CANONICAL_MODES = ("none", "colour", "all")


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
    """TV of rendered displacement videos; its weight (1000) applies with Animate124's video SDS (`video` None),
    Dream-in-4D's guidance sets it per phase (1000 at a quarter of the prior's size, 10 at full size)."""
    video: DreamIn4DVideoConfig | None = dfield(
        default_factory=DreamIn4DVideoConfig, metadata={"from_dict": _video_from_dict}
    )
    """Dream-in-4D's video guidance and clips (the default); None: the stage's Animate124 video SDS
    (`CoarseStageConfig.video`) on Animate124's clips."""
    refine_canonical: str = "colour"
    """What a refine stage trains of the canonical field besides the deformation: 'colour' (the default: the
    ControlNet-Tile target keeps its control image's layout, the coarse render of the same view, so what it adds is
    appearance; the shape stays the static stage's 3D-consistent one, which Dream-in-4D freezes against the video
    prior), 'all', or 'none'."""

    def __post_init__(self) -> None:
        if self.refine_canonical not in CANONICAL_MODES:
            raise ValueError(f"refine_canonical must be one of {CANONICAL_MODES}, got {self.refine_canonical!r}")

    def build(self, static: StaticField) -> DeformationField:
        return DeformationField.from_static(static, self.deformation)

    def video_term(self, stage_config: Any, prior: Any, prompt: str, negative: str = "") -> GuidanceTerm:
        if self.video is None:
            return super().video_term(stage_config, prior, prompt, negative)
        continues = stage_config.continues_coarse
        return DreamIn4DVideo(prior, self.video, prompt, negative, stage_config.prompt_suffix, continues)

    def clip_sampler(self, stage_config: Any) -> StaticCameraClips | None:
        return None if self.video is None else StaticCameraClips(self.video.clips)

    def frames_per_clip(self, stage_config: Any) -> int:
        return stage_config.time.num_frames if self.video is None else self.video.clips.num_frames

    def smoothness_term(self, stage_config: Any, video: GuidanceTerm | None = None) -> DisplacementTV:
        weight_at = video.tv_weight if isinstance(video, DreamIn4DVideo) else None
        return DisplacementTV(self.displacement_tv, stage_config.render.bound, weight_at)

    def metadata(self, field: DeformationField) -> dict[str, Any]:
        return {"deformation_config": field.deformation_config.to_dict()}

    def from_metadata(self, field_config: FieldConfig, meta: dict[str, Any]) -> DeformationField:
        return DeformationField(field_config, DeformationConfig.from_dict(meta["deformation_config"]))

    def continue_in_refine(self, field: DeformationField) -> None:
        """Train the canonical field as `refine_canonical` says; the grid keeps every level the coarse run unmasked
        (`DeformationField.set_progress` never lowers the count)."""
        theirs, ours = field.deformation_config, self.deformation
        if replace(theirs, train_canonical="none") != replace(ours, train_canonical="none"):
            raise incompatible("deformation network (deformation config)", theirs, ours)
        field.set_train_canonical(self.refine_canonical)

    def export(
        self,
        field: DeformationField,
        path: str | Path,
        config: AnimatedMeshConfig,
        device: str | torch.device = "cpu",
    ) -> ExportedMesh:
        return export_morph_targets(field, path, config, device)


__all__ = ["Deformation"]
