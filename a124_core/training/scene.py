"""The state handed from stage to stage: a field, its occupancy grid, which stage made it and how.

A scene file is a safetensors checkpoint (SPEC 10): tensors `field/*` and `occupancy/*`, and JSON metadata with
the stage, the field's sizes and the stage config. Training checkpoints add optimizer/RNG tensors to the same
file, so any checkpoint loads as a scene and a finished stage's checkpoint feeds the next stage.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..checkpoint import METADATA_KEY, load_checkpoint, save_checkpoint
from ..config_io import config_from_dict, config_to_dict
from ..fields.static import FieldConfig, RadianceField, StaticField
from ..rendering.occupancy import OccupancyConfig, OccupancyGrid
from .representations import representation_named, representation_of

FORMAT = "a124-scene"
#: The stages that write scenes, in the order they run.
STAGES = ("static", "coarse", "refine")
#: Metadata keys that decide whether a checkpoint can continue a run (compared by `check_resumable`), besides the
#: representation's own `resume_keys`.
SHAPE_KEYS = ("dynamic", "representation", "field_config", "occupancy_slots", "occupancy_config")


@dataclass
class Scene:
    """A trained (or training) field plus its occupancy grid."""

    field: RadianceField
    """StaticField after the static stage; a dynamic field of a registered representation after the others."""
    occupancy: OccupancyGrid
    """Empty-space grid matching the field (one slot per time slot)."""
    stage: str
    """The stage that produced it: 'static', 'coarse' or 'refine'."""
    step: int = 0
    """Training steps done in that stage."""
    complete: bool = False
    """Whether the stage ran to its last step."""
    stage_config: dict[str, Any] = field(default_factory=dict)
    """The producing stage's config (JSON form)."""

    @property
    def is_dynamic(self) -> bool:
        return bool(self.field.is_dynamic)

    def metadata(self) -> dict[str, Any]:
        """JSON metadata describing how to rebuild the field and grid."""
        meta: dict[str, Any] = {
            "format": FORMAT,
            "stage": self.stage,
            "dynamic": self.is_dynamic,
            "field_config": config_to_dict(self.field.config),
            "occupancy_config": config_to_dict(self.occupancy.config),
            "occupancy_slots": self.occupancy.time_slots,
            "occupancy_bound": self.occupancy.bound,
            "step": self.step,
            "complete": self.complete,
            "stage_config": self.stage_config,
        }
        if self.is_dynamic:
            representation = representation_of(self.field)
            meta["representation"] = representation.name
            meta.update(representation.metadata(self.field))
        return meta

    def tensors(self) -> dict[str, Tensor]:
        out = {f"field/{k}": v for k, v in self.field.state_dict().items()}
        out.update({f"occupancy/{k}": v for k, v in self.occupancy.state_dict().items()})
        return out

    def save(
        self, path: str | Path, extra_tensors: dict[str, Tensor] | None = None, extra_meta: dict | None = None
    ) -> Path:
        """Atomic write; `extra_*` carry training state (optimizer, RNG) for resumable checkpoints."""
        tensors = self.tensors()
        tensors.update(extra_tensors or {})
        meta = self.metadata()
        meta.update(extra_meta or {})
        return save_checkpoint(path, tensors, meta)

    @classmethod
    def from_checkpoint(cls, tensors: dict[str, Tensor], meta: dict[str, Any], source: str = "checkpoint") -> Scene:
        """Rebuild from what `load_checkpoint` returned (validates the format first)."""
        if meta.get("format") != FORMAT or meta.get("stage") not in STAGES:
            raise ValueError(
                f"{source} is not an Animate124 scene checkpoint (format {meta.get('format')!r}, stage "
                f"{meta.get('stage')!r}); pass a file written by the static, coarse or refine stage."
            )
        field_config = config_from_dict(FieldConfig, meta["field_config"])
        if meta["dynamic"]:
            representation = representation_named(meta.get("representation", "grid4d"))  # older files: grid4d
            model: RadianceField = representation.from_metadata(field_config, meta)
        else:
            model = StaticField(field_config)
        occupancy = OccupancyGrid(
            config_from_dict(OccupancyConfig, meta["occupancy_config"]),
            int(meta["occupancy_slots"]),
            float(meta["occupancy_bound"]),
        )
        _load_prefixed(model, tensors, "field/", source)
        _load_prefixed(occupancy, tensors, "occupancy/", source)
        return cls(
            model, occupancy, meta["stage"], int(meta["step"]), bool(meta["complete"]), meta.get("stage_config", {})
        )

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Scene:
        tensors, meta = load_checkpoint(path)
        scene = cls.from_checkpoint(tensors, meta, str(path))
        scene.field.to(device)
        scene.occupancy.to(device)
        return scene

    def to(self, device: str | torch.device) -> Scene:
        self.field.to(device)
        self.occupancy.to(device)
        return self


def read_header(path: str | Path) -> dict[str, Any]:
    """A checkpoint's metadata without loading its tensors ({} when the file is not an Animate124 scene)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get(METADATA_KEY, "{}"))
    return meta if meta.get("format") == FORMAT else {}


def describe(meta: dict[str, Any]) -> str:
    """'coarse scene, 5000/10000 steps (training state)' for messages."""
    if not meta:
        return "not an Animate124 scene"
    steps = f"{meta.get('step')}/{meta.get('total_steps', '?')} steps"
    state = ", with training state" if meta.get("training") else ""
    return f"{meta.get('stage')} scene, {steps}{state}"


def resumable_error(meta: dict[str, Any], stage: str) -> str | None:
    """Why a checkpoint cannot continue the `stage` stage (None when it can): the one rule nodes and stages share."""
    if meta.get("stage") != stage:
        return (
            f"it was written by the {meta.get('stage')!r} stage; the {stage} stage can only resume its own "
            f"checkpoints (pass it as the input scene of the next stage instead)"
        )
    if not meta.get("training"):
        return "it holds a scene but no training state (optimizer, RNG); it cannot be resumed"
    return None


def check_resumable(meta: dict[str, Any], stage: str, scene: Scene, source: str) -> None:
    """Raise before any step when a checkpoint does not fit the `stage` stage training `scene`."""
    error = resumable_error(meta, stage)
    if error:
        raise ValueError(f"{source}: {error}.")
    ours = json.loads(json.dumps(scene.metadata()))  # compare in JSON form (tuples -> lists)
    theirs = {"representation": "grid4d" if meta.get("dynamic") else None, **meta}  # files from before 'deformation'
    keys = SHAPE_KEYS + (representation_of(scene.field).resume_keys if scene.is_dynamic else ())
    for key in keys:
        if theirs.get(key) != ours.get(key):
            raise ValueError(
                f"{source} is incompatible with this stage's config: {key} is {theirs.get(key)} in the checkpoint but "
                f"{ours.get(key)} here. Resume with the config the checkpoint was trained with."
            )


def frozen_copy(scene: Scene, device: Any = None) -> Scene:
    """A copy of `scene` (on `device`) that never trains: the refine stage's ControlNet condition model."""
    copied = Scene(copy.deepcopy(scene.field), copy.deepcopy(scene.occupancy), scene.stage, scene.step, scene.complete)
    copied.field.requires_grad_(False).train(False)
    return copied if device is None else copied.to(device)


def _load_prefixed(module: torch.nn.Module, tensors: dict[str, Tensor], prefix: str, source: str) -> None:
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ValueError(
            f"{source} lacks tensors {[prefix + m for m in missing]}: the file is truncated or not a scene"
        )
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise ValueError(
                f"{source}: {prefix}{key} has shape {tuple(state[key].shape)} but its config builds "
                f"{tuple(value.shape)}; the file is inconsistent"
            )
    module.load_state_dict({k: state[k] for k in expected})


__all__ = [
    "FORMAT",
    "STAGES",
    "Scene",
    "check_resumable",
    "describe",
    "frozen_copy",
    "read_header",
    "resumable_error",
]
