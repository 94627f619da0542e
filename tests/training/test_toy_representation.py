"""A third representation, registered from this file alone: it trains a coarse step, round-trips and exports.

'drift' is the static field frozen and translated by a learned velocity, x_canonical = x - v t: the smallest
dynamic field there is. Nothing outside this file knows it; the registry entry is the only thing it adds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import pygltflib
import pytest
import torch
from torch import Tensor, nn

from a124_core.fields.static import FieldConfig, StaticField
from a124_core.outputs.animated_mesh import AnimatedMeshConfig
from a124_core.outputs.mesh import MeshConfig
from a124_core.outputs.scene_export import ExportedMesh, export_frame_meshes
from a124_core.presets import preset
from a124_core.training.coarse_stage import CoarseStage, DynamicPriors
from a124_core.training.representations import REPRESENTATIONS, Representation, export_animated_glb
from a124_core.training.runner import train
from a124_core.training.scene import Scene
from a124_core.training.terms.base import GuidanceTerm, StepContext


class DriftField(nn.Module):
    """The canonical static field (frozen) seen at x - v t."""

    is_dynamic = True

    def __init__(self, field_config: FieldConfig):
        super().__init__()
        self.canonical = StaticField(field_config).requires_grad_(False)
        self.velocity = nn.Parameter(torch.zeros(3))

    @property
    def config(self) -> FieldConfig:
        return self.canonical.config

    def forward(self, x: Tensor, t: Tensor | float | None = None) -> tuple[Tensor, Tensor]:
        t = torch.as_tensor(0.0 if t is None else t, dtype=x.dtype, device=x.device).reshape(-1, 1)
        return self.canonical(x - self.velocity * t)

    def density(self, x: Tensor, t: Tensor | float | None = None) -> Tensor:
        return self.forward(x, t)[0]

    def parameter_groups(self) -> list[dict]:
        return [{"params": [self.velocity], "lr": 0.05, "name": "velocity"}]


class SlowDrift(GuidanceTerm):
    """The toy's smoothness term: a small penalty on the speed."""

    name = "slow_drift"

    def __init__(self, weight: float):
        super().__init__()
        self.weight = weight

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        return {self.name: self.weight * ctx.field.velocity.square().sum()}


@dataclass(frozen=True)
class Drift(Representation):
    name: ClassVar[str] = "drift"
    description: ClassVar[str] = "the static scene translated at a learned velocity (a test toy)"
    field_type: ClassVar[type] = DriftField
    keeps_correspondence: ClassVar[bool] = False

    speed_weight: float = 1e-3

    def build(self, static: StaticField) -> DriftField:
        field = DriftField(static.config)
        field.canonical.load_state_dict(static.state_dict())
        return field

    def smoothness_term(self, stage_config: Any, video: Any = None) -> SlowDrift:
        return SlowDrift(self.speed_weight)

    def metadata(self, field: DriftField) -> dict[str, Any]:
        return {}

    def from_metadata(self, field_config: FieldConfig, meta: dict[str, Any]) -> DriftField:
        return DriftField(field_config)

    def continue_in_refine(self, field: DriftField) -> None:
        return None

    def export(
        self, field: DriftField, path: str | Path, config: AnimatedMeshConfig, device: Any = "cpu"
    ) -> ExportedMesh:
        return export_frame_meshes(field, path, config, device)


@pytest.fixture
def drift(monkeypatch):
    monkeypatch.setitem(REPRESENTATIONS, Drift.name, Drift())
    return REPRESENTATIONS[Drift.name]


def test_a_representation_registered_here_trains_round_trips_and_exports(
    drift, panda_reference, tiny_priors, smoke_run, tmp_path
):
    config = preset("smoke", "drift").coarse
    assert config.representation == drift
    config = replace(config, steps=1)
    stage = CoarseStage(config, panda_reference, smoke_run.static, DynamicPriors(tiny_priors.video), "a panda")
    assert isinstance(stage.scene.field, DriftField) and [t.name for t in stage.terms][-1] == "slow_drift"
    scene = train(stage, checkpoint_dir=tmp_path)
    assert scene.complete and scene.field.velocity.abs().sum() > 0, "one coarse step moved the velocity"

    loaded = Scene.load(tmp_path / "coarse.safetensors")
    assert isinstance(loaded.field, DriftField) and torch.equal(loaded.field.velocity, scene.field.velocity)
    assert loaded.metadata()["representation"] == "drift"

    mesh = AnimatedMeshConfig(mesh=MeshConfig(resolution=24, threshold=1.0), target_faces=0, num_frames=3)
    exported = export_animated_glb(loaded.field, tmp_path / "drift.glb", mesh)
    assert exported.path.is_file() and not exported.shared_topology and len(exported.vertices) == 3
    gltf = pygltflib.GLTF2().load(str(exported.path))
    assert len(gltf.animations) == 1 and len(gltf.meshes) == 3
