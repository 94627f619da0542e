"""What a dynamic representation is: one object that knows everything that differs between kinds of 4D field.

A coarse stage asks its config's representation to build the dynamic field from the static result and to name its
smoothness term; a scene file asks it for the metadata that rebuilds the field; the refine stage asks whether and
how it continues a coarse field; the exporters ask how it becomes an animated glTF. Nothing else branches on the
kind. A representation is a frozen dataclass: its fields are its settings (paper defaults), serialised with the
stage config under its `name`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ...fields.static import FieldConfig, StaticField
from ...outputs.animated_mesh import AnimatedMeshConfig
from ...outputs.scene_export import ExportedMesh
from ..terms.base import GuidanceTerm
from ..terms.video_sds import VideoSDS
from ..view import ViewSampler


@dataclass(frozen=True)
class Representation(ABC):
    """A kind of dynamic field and its settings."""

    name: ClassVar[str]
    """Registry key; the value users pick (CLI --representation, the nodes' dropdown)."""
    description: ClassVar[str]
    """One line for help texts and tooltips."""
    field_type: ClassVar[type[nn.Module]]
    """The field class it builds (a scene's field belongs to the representation whose field_type it is)."""
    keeps_correspondence: ClassVar[bool]
    """A point is the same point in every frame: the scene exports as one mesh with morph targets, and a user's
    mesh can be animated (its vertices moved) with it."""
    resume_keys: ClassVar[tuple[str, ...]] = ()
    """Keys of `metadata` that must match for a checkpoint to continue a run with these settings."""

    @abstractmethod
    def build(self, static: StaticField) -> nn.Module:
        """The dynamic field the coarse stage trains, initialised from the static result (which stays unchanged)."""

    @abstractmethod
    def smoothness_term(self, stage_config: Any, video: GuidanceTerm | None = None) -> GuidanceTerm | None:
        """The representation's own regulariser in the dynamic stages (`stage_config`: the stage's config; `video`:
        the stage's video term from `video_term`, whose schedule a regulariser's weight may follow)."""

    def video_term(self, stage_config: Any, prior: Any, prompt: str, negative: str = "") -> GuidanceTerm:
        """The video prior's term in the dynamic stages; by default Animate124's video SDS (`stage_config.video`)."""
        return VideoSDS(prior, stage_config.video, prompt, negative, stage_config.prompt_suffix)

    def clip_sampler(self, stage_config: Any) -> ViewSampler | None:
        """How the dynamic stages draw a clip per SDS step; None: the stage's own (Animate124's temporal balanced
        sampling with a moving camera, `coarse_stage.ClipViews`)."""
        return None

    def frames_per_clip(self, stage_config: Any) -> int:
        """F, frames of the clips `clip_sampler` draws (the refine stage's ControlNet frames are 0 and F / 2)."""
        return stage_config.time.num_frames

    @abstractmethod
    def metadata(self, field: nn.Module) -> dict[str, Any]:
        """What a scene file stores beside `field_config` to rebuild `field` (JSON values)."""

    @abstractmethod
    def from_metadata(self, field_config: FieldConfig, meta: dict[str, Any]) -> nn.Module:
        """An untrained field of the stored sizes (inverse of `metadata`); the scene's tensors are loaded next."""

    @abstractmethod
    def continue_in_refine(self, field: nn.Module) -> None:
        """Prepare a coarse field of this representation for the refine stage, in place; raise ValueError when these
        settings cannot continue it (sizes differ from the ones it was trained with)."""

    @abstractmethod
    def export(
        self, field: nn.Module, path: str | Path, config: AnimatedMeshConfig, device: str | torch.device = "cpu"
    ) -> ExportedMesh:
        """The field as one animated GLB at `path` (written atomically)."""

    def owns(self, field: Any) -> bool:
        return isinstance(field, self.field_type)


def incompatible(what: str, theirs: Any, ours: Any) -> ValueError:
    """The refine stage's message when a coarse scene and the refine config disagree."""
    return ValueError(
        f"Incompatible scene: it has {theirs} {what} but the refine config has {ours}; use the config the coarse "
        f"stage was trained with."
    )


__all__ = ["Representation", "incompatible"]
