"""Presets: every setting of a run that is not the user's own, in one object.

`paper` is the paper's schedule (SPEC 1: textual inversion 3000, static 5000, coarse 10000, refine 5000 steps, the
test orbit of SPEC 10). `fast` halves every stage, scores ControlNet-Tile at 512 instead of 1024 px (4x fewer
latent pixels) and estimates temporal TV on 5x fewer points: less detail and temporal smoothness for roughly 2.5x
less time. `smoke` is a tiny grid, 32 px renders, 4 frames, 4 time knots and a handful of steps: for tests and
installation checks with tiny random priors on a CPU; it produces no usable scene. The CLI, the nodes and the
benchmarks all read their settings from here, so a preset cannot disagree with itself across them; priors carry no
preset settings (frame counts and scoring sizes are the stage's).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .fields.deformation import DeformationConfig
from .fields.encoding import GridConfig
from .fields.hash_encoding import HashGridConfig
from .fields.static import FieldConfig
from .meshes.fit import MeshFitConfig
from .outputs.animated_mesh import AnimatedMeshConfig
from .outputs.mesh import MeshConfig
from .outputs.render import OrbitConfig
from .rendering.occupancy import OccupancyConfig
from .rendering.renderer import RenderConfig
from .textual_inversion.trainer import TextualInversionConfig
from .training.config import (
    CoarseStageConfig,
    ControlNetConfig,
    LoopConfig,
    RefineStageConfig,
    StageConfig,
    StaticStageConfig,
    TemporalTVConfig,
)
from .training.time_sampling import TimeSamplingConfig

PRESETS = ("paper", "fast", "smoke")
STAGES = ("static", "coarse", "refine")


@dataclass(frozen=True)
class Preset:
    """Textual inversion, the three stages, the test orbit, the animated-mesh export and the mesh fit of one preset."""

    name: str
    textual_inversion: TextualInversionConfig
    static: StaticStageConfig
    coarse: CoarseStageConfig
    refine: RefineStageConfig
    orbit: OrbitConfig
    mesh: AnimatedMeshConfig = field(default_factory=AnimatedMeshConfig)
    mesh_fit: MeshFitConfig = field(default_factory=MeshFitConfig)
    """Fitting the canonical field to a user's mesh (animate-mesh; its field and occupancy come from `static`)."""

    def stage(self, name: str) -> StageConfig:
        if name not in STAGES:
            raise ValueError(f"Unknown stage {name!r}; choose one of {', '.join(STAGES)}.")
        return getattr(self, name)

    def with_seed(self, seed: int) -> Preset:
        """Every stage and textual inversion seeded with `seed`."""
        stages = {name: replace(self.stage(name), seed=seed) for name in STAGES}
        return replace(self, textual_inversion=replace(self.textual_inversion, seed=seed), **stages)


def preset(name: str, representation: str = "grid4d") -> Preset:
    """The named preset (see the module docstring) with its dynamic stages on `representation` ('grid4d', the paper's
    4D grid, or 'deformation', Dream-in-4D's deformation field)."""
    chosen = _preset(name)
    if representation == "grid4d":
        return chosen
    dynamic = {s: replace(chosen.stage(s), representation=representation) for s in ("coarse", "refine")}
    return replace(chosen, **dynamic)


def _preset(name: str) -> Preset:
    if name == "paper":
        return Preset(
            "paper",
            TextualInversionConfig(micro_batch=16),  # the batch of 16 in one pass (a quarter of the launches)
            StaticStageConfig(),
            CoarseStageConfig(),
            RefineStageConfig(),
            OrbitConfig(),
        )
    if name == "fast":
        tv = TemporalTVConfig(points=20_000)
        controlnet = ControlNetConfig(sds=replace(ControlNetConfig().sds, image_size=512))
        return Preset(
            "fast",
            TextualInversionConfig(steps=1500, micro_batch=16),
            StaticStageConfig(steps=2500),
            CoarseStageConfig(steps=5000, temporal_tv=tv),
            RefineStageConfig(steps=2500, temporal_tv=tv, controlnet=controlnet),
            OrbitConfig(),
        )
    if name == "smoke":
        return _smoke()
    raise ValueError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")


def _smoke() -> Preset:
    grid = GridConfig(
        num_levels=4, features_per_level=2, base_resolution=4, finest_resolution=32, log2_entries_per_level=12
    )
    common = dict(
        render_size=32,
        reference_size=32,
        reference_warmup=2,
        reference_every=3,
        render=RenderConfig(num_samples=16, num_importance=8),
        occupancy=OccupancyConfig(resolution=16, update_every=4),
        loop=LoopConfig(checkpoint_every=0, progress_every=1, preview_every=2, preview_size=32),
    )
    deformation = DeformationConfig(
        grid=HashGridConfig(num_levels=4, base_resolution=4, finest_resolution=16, log2_hashmap_size=12),
        hidden_dim=16,
        num_hidden_layers=2,
        start_levels=2,
        levels_every=2,
    )
    dynamic = dict(
        num_knots=4,
        deformation=deformation,
        temporal_tv=TemporalTVConfig(points=1024),
        time=TimeSamplingConfig(num_frames=4, lattice=16),
        occupancy_slots=2,
    )
    controlnet = ControlNetConfig(sds=replace(ControlNetConfig().sds, image_size=64))  # 2x the tiny priors' 32 px
    return Preset(
        "smoke",
        TextualInversionConfig(steps=3, batch_size=2, micro_batch=2, checkpoint_every=0, preview_every=0),
        StaticStageConfig(steps=8, field=FieldConfig(grid=grid, hidden_dim=16), **common),
        CoarseStageConfig(steps=6, **common, **dynamic),
        RefineStageConfig(steps=4, controlnet=controlnet, **common, **dynamic),
        OrbitConfig(num_views=4, num_frames=8, resolution=64),
        AnimatedMeshConfig(mesh=MeshConfig(resolution=32), target_faces=0, num_frames=8),
        MeshFitConfig(
            steps=60,
            batch_points=1024,
            voxel_resolution=64,
            photometric_steps=10,
            photometric_views=4,
            photometric_size=32,
            photometric_rays=256,
            surface_pool=8192,
        ),
    )


__all__ = ["PRESETS", "STAGES", "Preset", "preset"]
