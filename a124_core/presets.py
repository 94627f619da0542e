"""Presets: every setting of a run that is not the user's own, in one object.

`paper` is the paper's schedule (SPEC 1: textual inversion 3000, static 5000, coarse 10000, refine 5000 steps, the
test orbit of SPEC 10). `fast` (docs/presets.md) runs textual inversion for 1000 steps from a pool of 1024 encoded
augmentations, the static stage for half and the dynamic stages for 40 % of the paper's steps with forward-difference
normals, scores ControlNet-Tile at 512 instead of 1024 px (4x fewer latent pixels) and estimates temporal TV on 5x
fewer points: less detail and temporal smoothness for about 3.5x less time (<= 10 min projected on one H100).
`smoke` is a tiny grid, 32 px renders, 4 frames, 4 time knots and a handful of steps: for tests and installation
checks with tiny random priors on a CPU; it produces no usable scene. `dream-in-4d` has Dream-in-4D's
schedules where they differ from Animate124's (`_dream_in_4d`): the static stage's text mode (MVDream + SD2.1-base,
64 px renders in batches of 8, then 256 px in batches of 4; docs/mvdream.md) and the deformation stage's video
guidance (docs/representations.md). The CLI, the nodes and the
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
    DREAM_IN_4D_STATIC_SCHEDULE,
    CoarseStageConfig,
    ControlNetConfig,
    LoopConfig,
    RefineStageConfig,
    ShadingConfig,
    StageConfig,
    StaticStageConfig,
)
from .training.representations import (
    DEFAULT_REPRESENTATION,
    Deformation,
    Grid4D,
    Representation,
    representation_named,
)
from .training.scene import STAGES
from .training.terms.regularisers import RegularisersConfig
from .training.terms.temporal_tv import TemporalTVConfig
from .training.terms.video_x0 import DreamIn4DVideoConfig, StaticClipConfig, VideoPhase
from .training.time_sampling import TimeSamplingConfig

PRESETS = ("paper", "fast", "smoke", "dream-in-4d")
#: The seeds torch.Generator.manual_seed accepts (non-negative).
SEED_MAX = 2**64 - 1


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
    representations: tuple[Representation, ...] = ()
    """The preset's own settings of representations it sizes (e.g. smoke's tiny deformation grid); any other
    registered representation runs with its default settings."""

    def representation(self, name: str) -> Representation:
        """The preset's settings of representation `name` (ValueError for an unknown name)."""
        default = representation_named(name)
        return next((r for r in self.representations if r.name == name), default)

    def stage(self, name: str) -> StageConfig:
        if name not in STAGES:
            raise ValueError(f"Unknown stage {name!r}; choose one of {', '.join(STAGES)}.")
        return getattr(self, name)

    def with_seed(self, seed: int) -> Preset:
        """Every stage and textual inversion seeded with `seed` (ValueError outside the generator's range)."""
        if not 0 <= seed <= SEED_MAX:
            raise ValueError(f"The seed must be a whole number from 0 to {SEED_MAX} (the generator's range): {seed}")
        stages = {name: replace(self.stage(name), seed=seed) for name in STAGES}
        return replace(self, textual_inversion=replace(self.textual_inversion, seed=seed), **stages)


def preset(name: str, representation: str = DEFAULT_REPRESENTATION) -> Preset:
    """The named preset (see the module docstring) with its dynamic stages on the registered `representation`
    (`training/representations`: 'grid4d', the paper's 4D grid, 'deformation', Dream-in-4D's deformation field).
    Raises ValueError naming the choices for an unknown preset or representation: the one check callers need."""
    chosen = _preset(name)
    settings = chosen.representation(representation)
    return replace(chosen, **{s: replace(chosen.stage(s), representation=settings) for s in ("coarse", "refine")})


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
    if name == "fast":  # docs/presets.md: each setting against the paper's, its time and its quality cost
        grid4d = Grid4D(temporal_tv=TemporalTVConfig(points=20_000))
        controlnet = ControlNetConfig(sds=replace(ControlNetConfig().sds, image_size=512))
        dynamic_render = RenderConfig(normal_differences="forward")
        return Preset(
            "fast",
            TextualInversionConfig(steps=1000, micro_batch=16, latent_pool=1024),
            StaticStageConfig(steps=2500),
            CoarseStageConfig(steps=4000, render=dynamic_render),
            RefineStageConfig(steps=2000, controlnet=controlnet, render=dynamic_render),
            OrbitConfig(),
            representations=(grid4d,),
        )
    if name == "smoke":
        return _smoke()
    if name == "dream-in-4d":
        return _dream_in_4d()
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
    grid4d = Grid4D(num_knots=4, temporal_tv=TemporalTVConfig(points=1024))
    # 4-frame clips rendered at half the tiny priors' 32 px (a quarter would be 8 px)
    smoke_video = DreamIn4DVideoConfig(phases=(VideoPhase(0.0, 0.5, 1000.0),), clips=StaticClipConfig(num_frames=4))
    dynamic = dict(time=TimeSamplingConfig(num_frames=4, lattice=16), occupancy_slots=2)
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
        representations=(grid4d, Deformation(deformation=deformation, video=smoke_video)),
    )


#: threestudio-MVDream's negative prompt, which Dream-in-4D's static stage gives both text priors.
MVDREAM_NEGATIVE_PROMPT = (
    "ugly, bad anatomy, blurry, pixelated obscure, unnatural colors, poor lighting, dull, and unclear, cropped, "
    "lowres, low quality, artifacts, duplicate, morbid, mutilated, poorly drawn face, deformed, dehydrated, "
    "bad proportions"
)


def _dream_in_4d() -> Preset:
    """Dream-in-4D (supplement 3, NVlabs/dream-in-4d configs/stage_1/mvdream-sd21-sd.yaml). Static stage, text mode:
    MVDream (CFG 50, lambda_3D 1) + SD2.1-base (CFG 100, t in [0.2, 0.6], lambda_2D 1) on 10000 steps, 64 px x 8
    views then 256 px x 4 from step 5000, no shading ("no-material": albedo), no regularisers, the hash grid up to
    4096 with 2^19 entries per level, the prompt as given, threestudio-MVDream's negative prompt. Dynamic stage (use
    with the deformation representation; stage-2 configs): 10000 iterations of the deformation network with
    Dream-in-4D's video guidance, whose render size and displacement-TV weight follow the authors' schedule for the
    video prior (docs/representations.md has the table). Dream-in-4D has no refinement: the optional ControlNet
    stage runs as in `paper`."""
    paper = _preset("paper")
    grid = replace(paper.static.field.grid, finest_resolution=4096, log2_entries_per_level=19)
    static = replace(
        paper.static,
        steps=10000,
        field=replace(paper.static.field, grid=grid),
        render_schedule=DREAM_IN_4D_STATIC_SCHEDULE,
        shading=ShadingConfig(p_textureless=0.0, normal_until=0.0, ambient_range=(1.0, 1.0)),
        regularisers=RegularisersConfig(opacity_entropy=0.0, orientation=0.0, normal_tv=0.0, normal_blur=0.0),
        prompt_suffix="",
        negative_prompt=MVDREAM_NEGATIVE_PROMPT,
    )
    deformation = Deformation(deformation=DeformationConfig(), video=DreamIn4DVideoConfig())
    return replace(
        paper,
        name="dream-in-4d",
        static=static,
        coarse=replace(paper.coarse, steps=10000),
        representations=(deformation,),
    )


__all__ = ["MVDREAM_NEGATIVE_PROMPT", "PRESETS", "SEED_MAX", "Preset", "preset"]
