"""Mesh from video, oracle: the limb mesh (tests/meshes/builder.py) with its arms rising, filmed from the front, is
the input clip; the image-pose oracle renders that mesh at the time of the frame it is conditioned on.

The film is what an image-to-video model would return: each frame is the exact raster render of the articulated
mesh from the reference camera, pasted on a wider white canvas (a 16:9-like frame around the square render, as a
video model's output canvas would be), so `meshes.from_video.mesh_clip` has to crop frame 0 back onto the mesh's
front render. The stage under test is the real one (`meshes.animate.animation_stage` with the clip as its
reference: per-frame reconstruction, Zero123 per frame, ARAP on the mesh's vertices at the shipped default weight).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from a124_core.cameras import make_cameras
from a124_core.meshes import mesh_from_tensors, render_mesh, scene_from_mesh
from a124_core.meshes.animate import MeshAnimationConfig, animated_positions, animation_stage
from a124_core.meshes.from_video import mesh_clip
from a124_core.meshes.normalise import DEFAULT_RADIUS, fit_transform
from a124_core.meshes.surface import MeshSurface
from a124_core.outputs.animated_mesh import AnimatedMeshConfig
from a124_core.reference import ClipConfig, ReferenceClip, ReferenceConfig
from a124_core.training.coarse_stage import DynamicPriors

from ..meshes import builder
from . import clip_run, mesh_animation, setup
from .clip_priors import ClipImagePoseOracle

NUM_FRAMES = 24
FILM_SIZE = 48
#: The film's canvas (height, width): the square render sits at this offset (row, column).
CANVAS, OFFSET = (56, 96), (5, 30)
CLIP = ClipConfig(reference=ReferenceConfig(size=64, ti_size=64))


class MeshTruth:
    """Exact renders [3, H, W] of the limb mesh at time t (arms raised by RAISE_DEG * t) in scene coordinates."""

    def __init__(self, mesh: builder.LimbMesh, to_scene: Any):
        self.mesh, self.to_scene = mesh, to_scene
        self.asset = mesh_from_tensors(torch.tensor(mesh.vertices), torch.tensor(mesh.faces))
        self.asset.vertex_colors = mesh.vertex_colors.astype(np.float32)

    def positions(self, t: float) -> np.ndarray:
        return self.to_scene(builder.articulated_positions(self.mesh, t))

    @torch.no_grad()
    def render(self, t: float, polar_deg: float, azimuth_deg: float, height: int, width: int) -> dict[str, Tensor]:
        surface = MeshSurface.from_asset(self.asset, mesh_animation._Identity())
        surface.vertices = torch.tensor(self.positions(t), dtype=torch.float32)
        return render_mesh(surface, make_cameras(polar_deg, azimuth_deg), height, width)


class MeshClipPoseOracle(ClipImagePoseOracle):
    """The per-frame image-pose oracle of the limb mesh: identifies its frame, answers with the mesh at that time."""

    def __init__(self, times: Tensor, truth: MeshTruth, size: int = setup.SIZE):
        super().__init__(times, size=size)
        self.truth = truth

    def image(self, t: float, polar_deg: float, azimuth_deg: float, height: int, width: int) -> Tensor:
        return self.truth.render(t, polar_deg, azimuth_deg, height, width)["rgb"][0].permute(2, 0, 1)


def film(truth: MeshTruth, num_frames: int = NUM_FRAMES) -> tuple[Tensor, Tensor]:
    """Frames [N, H, W, 3] on white and masks [N, H, W] of the mesh in motion, on the wider canvas."""
    frames = torch.ones(num_frames, *CANVAS, 3)
    masks = torch.zeros(num_frames, *CANVAS)
    (top, left), s = OFFSET, FILM_SIZE
    for k, t in enumerate(torch.linspace(0.0, 1.0, num_frames).tolist()):
        out = truth.render(t, 90.0, 0.0, s, s)
        frames[k, top : top + s, left : left + s] = out["rgb"][0]
        masks[k, top : top + s, left : left + s] = (out["opacity"][0, ..., 0] > 0.5).float()
    return frames, masks


def prepare_clip(clip: ReferenceClip) -> ReferenceClip:
    """What the stage is given (unchanged; the mutations replace this function)."""
    return clip


def mesh_video_run(steps: int = 100, arap_weight: float | None = None) -> mesh_animation.MeshRun:
    """Fit the limb mesh, animate it from the film of its motion (shipped ARAP default unless `arap_weight`),
    measure the output vertices at held-out times (between the film's frames)."""
    mesh = builder.build_test_mesh()
    truth = MeshTruth(mesh, fit_transform(mesh.vertices, mesh.faces, DEFAULT_RADIUS).to_scene)
    frames, masks = film(truth)
    clip = prepare_clip(mesh_clip(truth.asset, frames=frames, masks=masks, config=CLIP))
    start = time.perf_counter()
    fit = scene_from_mesh(truth.asset, mesh_animation.FIT)
    seconds = {"fit": time.perf_counter() - start}
    stage_config = clip_run.video_config(steps, deformation=mesh_animation.DEFORMATION, render=mesh_animation.RENDER)
    if arap_weight is not None:
        stage_config = replace(stage_config, arap=replace(stage_config.arap, weight=arap_weight))
    config = MeshAnimationConfig(mesh_animation.FIT, stage_config, AnimatedMeshConfig(num_frames=2), setup.SIZE)
    zero123 = MeshClipPoseOracle(clip.times, truth)
    stage = animation_stage(fit, config, DynamicPriors(zero123=zero123), "", reference=clip)
    start = time.perf_counter()
    scene = setup.run(stage)
    seconds["stage"] = time.perf_counter() - start
    return measure(mesh, fit, scene, config, seconds, zero123)


def measure(mesh, fit, scene, config, seconds, oracle) -> mesh_animation.MeshRun:
    times = mesh_animation.HELD_OUT_TIMES
    positions, _ = animated_positions(scene.field, fit, config.export, times=times)
    rest = fit.transform.to_scene(mesh.vertices)
    target = {t: fit.transform.to_scene(builder.articulated_positions(mesh, t)) for t in times}
    errors = {t: float(np.linalg.norm(p - target[t], axis=-1).mean()) for t, p in zip(times, positions)}
    still = {t: float(np.linalg.norm(rest - target[t], axis=-1).mean()) for t in times}
    change = mesh_animation.edge_change(rest, positions, mesh_animation.rigid_edges(mesh))
    p95 = float(np.percentile(change, 95))
    return mesh_animation.MeshRun(errors, still, float(change.mean()), p95, seconds, oracle, positions)


__all__ = ["MeshClipPoseOracle", "MeshTruth", "film", "mesh_video_run", "prepare_clip"]


if __name__ == "__main__":  # python -m tests.oracle.clip_mesh: the runs the test's docstring quotes
    import sys

    from .mutations import patched

    torch.set_num_threads(1)
    print("mesh from video:", mesh_video_run())
    with patched(sys.modules[__name__], "prepare_clip", clip_run.reversed_clip):
        print("the film reversed in time:", mesh_video_run())
