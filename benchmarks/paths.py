"""The paths users run, one entry each, for the step-counting scripts (roofline.py, estimate_gpu.py).

A path says which stages it trains (textual inversion 'ti', 'static', 'coarse', 'refine'), on which dynamic
representation, with or without a reference image, and with or without a mesh to animate; `build_stage` builds
each stage as the pipeline does. A new path is one more `UserPath` in `PATHS`, with its own `builders` where its
stages are not the image-to-4D ones (text-to-4D with MVDream, video-to-4D) and the `priors` it adds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from a124_core.presets import Preset, preset
from a124_core.training.coarse_stage import CoarseStage, DynamicPriors
from a124_core.training.refine_stage import RefinePriors, RefineStage
from a124_core.training.static_stage import StaticPriors, StaticStage

STAGES = ("ti", "static", "coarse", "refine")
APPEARANCE = "a high-resolution DSLR image of a panda"
MOTION = "a panda is dancing"


@dataclass(frozen=True)
class UserPath:
    """One way a user runs the pipeline, as the step scripts count it."""

    name: str
    """Key in PATHS and the scripts' --path value."""
    stages: tuple[str, ...]
    """The steps it trains, in order (from STAGES)."""
    representation: str = "grid4d"
    """The dynamic stages' field ('grid4d' or 'deformation')."""
    reference: bool = True
    """Whether it has a reference image (text-to-4D has none: no TI, Zero123, reconstruction or refinement)."""
    mesh_vertices: int = 0
    """Animate-mesh: the ARAP term over a mesh of this many vertices (an icosphere stands for the user's mesh)."""
    builders: dict[str, Callable[..., Any]] = field(default_factory=dict)
    """Stage name -> builder(path, configs, priors, reference, previous) for stages built another way."""
    priors: tuple[str, ...] = ()
    """Priors it needs besides the image-to-4D four ('mvdream', 'sd21'): loaded only for this path."""

    def configs(self, preset_name: str) -> Preset:
        return preset(preset_name, self.representation)


def mesh_of(vertices: int) -> tuple[Any, Any]:
    """(vertices [V, 3], faces [F, 3]) of an icosphere with at least `vertices` vertices, radius 0.4 (the sphere
    the occupancy stands for)."""
    import trimesh

    subdivisions = 0
    while 10 * 4**subdivisions + 2 < vertices:
        subdivisions += 1
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=0.4)
    return sphere.vertices, sphere.faces


def still_clip(reference: Any, frames: int) -> Any:
    """A `ReferenceClip` of `frames` copies of the reference image at times i / (N - 1): the shapes of a video's
    clip (what a step costs does not depend on the frames' content)."""
    from a124_core.reference.clip import ReferenceClip

    def stack(image):
        return None if image is None else image[None].expand(frames, *image.shape).contiguous()

    return ReferenceClip(
        rgb=stack(reference.rgb), alpha=stack(reference.alpha), mask=stack(reference.mask),
        depth=stack(reference.depth), times=torch.linspace(0.0, 1.0, frames), source_index=torch.arange(frames),
        first=reference, fps=24.0,
    )  # fmt: skip


def video_coarse(path: UserPath, configs: Preset, priors: dict, reference: Any, previous: Any) -> CoarseStage:
    """Video-to-4D's coarse stage (training/video_clip.py): every step reconstructs F clip frames and scores a novel
    view of each with Zero123; with the optional video prior (counted: the run's largest step) on a camera path. The
    clip has the preset's frame budget (pipeline/video.py)."""
    from a124_core.pipeline.video import FRAME_BUDGET

    clip = still_clip(reference, FRAME_BUDGET.get(configs.name, 64))
    return CoarseStage(configs.coarse, clip, previous, DynamicPriors(priors["video"], priors["zero123"]), MOTION)


def mvdream_static(path: UserPath, configs: Preset, priors: dict, reference: Any, previous: Any) -> StaticStage:
    """Text-to-4D's static stage with MVDream (`--mvdream`): multi-view SDS on MVDream plus SD2.1-base (the 2D
    prior a run with MVDream loads), no reference."""
    return StaticStage(configs.static, None, StaticPriors(priors["sd21"], None, priors["mvdream"]), APPEARANCE)


def build_stage(path: UserPath, name: str, configs: Preset, priors: dict, reference: Any, previous: Any = None):
    """Stage `name` of `path` as the pipeline builds it, from the `previous` stage's scene."""
    if name in path.builders:
        return path.builders[name](path, configs, priors, reference, previous)
    ref = reference if path.reference else None
    zero123 = priors["zero123"] if path.reference else None
    if name == "static":
        return StaticStage(configs.static, ref, StaticPriors(priors["sd"], zero123), APPEARANCE)
    if name == "coarse":
        mesh = mesh_of(path.mesh_vertices) if path.mesh_vertices else None
        return CoarseStage(configs.coarse, ref, previous, DynamicPriors(priors["video"], zero123), MOTION, mesh=mesh)
    if name == "refine":
        token = torch.randn(1, priors["controlnet"].text_encoder.get_input_embeddings().weight.shape[1])
        return RefineStage(
            configs.refine, ref, previous, RefinePriors(priors["video"], zero123, priors["controlnet"]), MOTION,
            token_prompt="a _panda_ is dancing", token_name="_panda_", token_embedding=token,
        )  # fmt: skip
    raise ValueError(f"Unknown stage {name!r}; choose from {STAGES}")


#: The paths users run. image-to-4D is the paper's (the default of the CLI and the bundled workflows).
PATHS: dict[str, UserPath] = {
    p.name: p
    for p in (
        UserPath("image-to-4d", ("ti", "static", "coarse", "refine")),
        UserPath("deformation", ("ti", "static", "coarse", "refine"), representation="deformation"),
        UserPath("text-to-4d", ("static", "coarse"), reference=False),
        UserPath("animate-mesh", ("coarse",), representation="deformation", mesh_vertices=100_000),
        UserPath("text-to-4d-mvdream", ("static", "coarse"), reference=False, builders={"static": mvdream_static},
                 priors=("mvdream", "sd21")),  # fmt: skip
        UserPath("video-to-4d", ("static", "coarse"), representation="deformation", builders={"coarse": video_coarse}),
    )
}

__all__ = ["PATHS", "STAGES", "UserPath", "build_stage", "mesh_of", "still_clip"]
