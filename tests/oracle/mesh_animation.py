"""The mesh-animation oracle: the test's limb mesh (tests/meshes/builder.py), a video oracle that knows its arms
rotating about their shoulder joints, and what the run is measured by (vertex error, rigid edge lengths).

The oracle's true frames are exact raster renders (`render_mesh`) of the articulated mesh at each frame's time and
camera; the stage under test is the real one (`meshes.animate.animation_stage`: canonical field fitted to the
mesh, deformation representation, reference = the mesh's front render, ARAP on the mesh's vertices).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from a124_core.cameras import make_cameras
from a124_core.fields.deformation import DeformationConfig
from a124_core.fields.hash_encoding import HashGridConfig
from a124_core.geometry.topology import welded_edges
from a124_core.meshes import MeshFitConfig, MeshSurface, mesh_from_tensors, render_mesh, scene_from_mesh
from a124_core.meshes.animate import MeshAnimationConfig, animated_positions, animation_stage
from a124_core.outputs.animated_mesh import AnimatedMeshConfig
from a124_core.rendering.renderer import RenderConfig
from a124_core.training.coarse_stage import DynamicPriors
from a124_core.training.representations import Deformation
from a124_core.training.terms.video_x0 import DreamIn4DVideoConfig, StaticClipConfig

from ..meshes import builder
from . import setup
from .priors import VideoOracle

RENDER = RenderConfig(num_samples=24, num_importance=8)
#: The video oracle scores clips at Zeroscope's aspect: Dream-in-4D's guidance renders a quarter of it (20 x 36).
VIDEO_SIZE = (80, 144)
#: Frames per clip of the oracle runs (the paper's 24 would cost 6x more on a CPU).
FRAMES = 4
#: Subdivisions of the dense limb mesh (132 -> 26k vertices, 104k faces).
DENSE = 4
#: The densities the oracle test runs: the limb mesh and its 2x subdivided copy (2.1k vertices); DENSE takes ~14 min
#: a run on the shared CPUs (the ARAP term moves ~20k vertices x 4 frames x 5 field evaluations a step).
TESTED_SUBDIVISIONS = (0, 2)
#: Times no clip is rendered at (clips start on the 1/31 lattice of setup.DYNAMIC; these are between its points).
HELD_OUT_TIMES = [0.2, 0.5, 0.85]
DEFORMATION = DeformationConfig(
    grid=HashGridConfig(num_levels=6, base_resolution=4, finest_resolution=32, log2_hashmap_size=14),
    hidden_dim=32,
    num_hidden_layers=2,
    start_levels=3,
    levels_every=40,
    lr_grid=1e-2,
    lr_mlp=3e-3,
)
FIT = MeshFitConfig(
    field=setup.FIELD,
    steps=100,
    batch_points=2048,
    voxel_resolution=64,
    photometric_steps=20,
    photometric_views=6,
    photometric_size=32,
    photometric_rays=512,
    surface_pool=8192,
)


class MeshVideoOracle(VideoOracle):
    """The video slot: the limb mesh with its arms raised by RAISE_DEG * t, in scene coordinates (`to_scene`),
    as `motion` (+1) or the reverse motion (-1: arms lowered)."""

    def __init__(self, mesh: builder.LimbMesh, to_scene: Any, motion: float = 1.0, size: int = setup.SIZE):
        super().__init__(size=size)
        self.mesh, self.to_scene, self.motion = mesh, to_scene, motion
        self.asset = mesh_from_tensors(torch.tensor(mesh.vertices), torch.tensor(mesh.faces))
        self.asset.vertex_colors = mesh.vertex_colors.astype(np.float32)

    def positions(self, t: float) -> np.ndarray:
        """[V, 3] scene-space truth at time t."""
        return self.to_scene(builder.articulated_positions(self.mesh, self.motion * t))

    @torch.no_grad()
    def frame(self, t: float, polar_deg: float, azimuth_deg: float, height: int, width: int) -> Tensor:
        surface = MeshSurface.from_asset(self.asset, _Identity())
        surface.vertices = torch.tensor(self.positions(t), dtype=torch.float32)
        return render_mesh(surface, make_cameras(polar_deg, azimuth_deg), height, width)["rgb"][0].permute(2, 0, 1)


class _Identity:
    def to_scene(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64)


@dataclass
class MeshRun:
    """What a mesh-animation oracle run measured."""

    vertex_error: dict[float, float]
    """Mean |output vertex - target| (scene units) over all vertices at each held-out time."""
    still_error: dict[float, float]
    """The same for the mesh left at rest (what no motion scores)."""
    edge_change: float
    """Mean relative change of the rigid parts' welded edge lengths over the held-out times (0.05 = 5 %)."""
    edge_change_p95: float
    """Its 95th percentile."""
    seconds: dict[str, float]
    oracle: MeshVideoOracle
    positions: np.ndarray  # [T, V, 3] output at HELD_OUT_TIMES

    def __str__(self) -> str:
        err = ", ".join(f"t={t}: {e:.4f} (still {self.still_error[t]:.4f})" for t, e in self.vertex_error.items())
        times = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        return (
            f"vertex error {err}; rigid edge change mean {100 * self.edge_change:.1f} % "
            f"(p95 {100 * self.edge_change_p95:.1f} %); {times}"
        )


def rigid_edges(mesh: builder.LimbMesh) -> np.ndarray:
    """Welded edges [E, 2] (as vertex indices of the mesh) whose two ends are on the same part."""
    classes, edges, _ = welded_edges(mesh.vertices, mesh.faces)
    _, first = np.unique(classes, return_index=True)
    ends = first[edges]
    return ends[mesh.part[ends[:, 0]] == mesh.part[ends[:, 1]]]


def edge_change(rest: np.ndarray, frames: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """|length / rest length - 1| of each edge [E] in each frame [T, E]."""
    length0 = np.linalg.norm(rest[edges[:, 0]] - rest[edges[:, 1]], axis=-1)
    lengths = np.linalg.norm(frames[:, edges[:, 0]] - frames[:, edges[:, 1]], axis=-1)
    return np.abs(lengths / length0 - 1)


def subdivide(mesh: builder.LimbMesh, levels: int) -> builder.LimbMesh:
    """The same shape with each triangle split into 4 (edge midpoints) `levels` times: 132 -> 26k vertices at 4.
    Midpoints average their edge's attributes; edges never cross parts, so a midpoint keeps its part."""
    vertices, faces, uv, colours, part = mesh.vertices, mesh.faces, mesh.uv, mesh.vertex_colors, mesh.part
    for _ in range(levels):
        edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
        unique, inverse = np.unique(edges, axis=0, return_inverse=True)
        mid = len(vertices) + inverse.reshape(3, -1).T  # [F, 3]: midpoints of edges 01, 12, 20
        vertices, uv, colours = (np.concatenate([a, a[unique].mean(1)]) for a in (vertices, uv, colours))
        part = np.concatenate([part, part[unique[:, 0]]])
        a, b, c = faces.T
        m01, m12, m20 = mid.T
        faces = np.concatenate(
            [np.stack(f, 1) for f in ((a, m01, m20), (m01, b, m12), (m20, m12, c), (m01, m12, m20))]
        )
    return builder.LimbMesh(vertices, faces, uv, colours, part, mesh.texture)


def mesh_run(
    steps: int = 100,
    arap_weight: float | None = None,
    motion: float = 1.0,
    subdivisions: int = 0,
    frames: int = FRAMES,
    seed: int | None = None,
) -> MeshRun:
    """Fit the limb mesh (subdivided `subdivisions` times), animate it with the video oracle alone (ARAP at
    `arap_weight`, None: the shipped default; the stage's `seed`, None: the config's), measure the output vertices at
    held-out times."""
    mesh = subdivide(builder.build_test_mesh(), subdivisions)
    asset = mesh_from_tensors(torch.tensor(mesh.vertices), torch.tensor(mesh.faces))
    asset.vertex_colors = mesh.vertex_colors.astype(np.float32)
    start = time.perf_counter()
    fit = scene_from_mesh(asset, FIT)
    seconds = {"fit": time.perf_counter() - start}
    video_config = DreamIn4DVideoConfig(clips=StaticClipConfig(num_frames=frames))
    representation = Deformation(DEFORMATION, video=video_config)  # the displacement TV at its default
    stage_config = setup.coarse_config(steps, representation=representation, render=RENDER)
    if arap_weight is not None:
        stage_config = replace(stage_config, arap=replace(stage_config.arap, weight=arap_weight))
    if seed is not None:
        stage_config = replace(stage_config, seed=seed)
    config = MeshAnimationConfig(FIT, stage_config, AnimatedMeshConfig(num_frames=2), reference_size=setup.SIZE)
    video = MeshVideoOracle(mesh, fit.transform.to_scene, motion, size=VIDEO_SIZE)
    stage = setup.watch(animation_stage(fit, config, DynamicPriors(video=video), "arms are raised"), video)
    start = time.perf_counter()
    scene = setup.run(stage)
    seconds["stage"] = time.perf_counter() - start
    positions, _ = animated_positions(scene.field, fit, config.export, times=HELD_OUT_TIMES)
    rest = fit.transform.to_scene(mesh.vertices)
    # The expected motion is always the arms raised: with motion=-1 (the mutation) the oracle shows them lowered.
    target = {t: fit.transform.to_scene(builder.articulated_positions(mesh, t)) for t in HELD_OUT_TIMES}
    errors = {t: float(np.linalg.norm(p - target[t], axis=-1).mean()) for t, p in zip(HELD_OUT_TIMES, positions)}
    still = {t: float(np.linalg.norm(rest - target[t], axis=-1).mean()) for t in HELD_OUT_TIMES}
    change = edge_change(rest, positions, rigid_edges(mesh))
    return MeshRun(errors, still, float(change.mean()), float(np.percentile(change, 95)), seconds, video, positions)


def main() -> None:
    """python -m tests.oracle.mesh_animation [weight ...]: the runs the docs quote (default ARAP and off on the tested
    densities and the dense mesh, the motion reversed) or the given ARAP weights on the coarse and the dense mesh."""
    torch.set_num_threads(1)
    weights = [float(w) for w in sys.argv[1:]]
    if weights:
        for weight in weights:
            for subdivisions in (0, DENSE):
                print(
                    f"ARAP {weight:g}, {subdivisions} subdivisions:",
                    mesh_run(arap_weight=weight, subdivisions=subdivisions),
                    flush=True,
                )
        return
    for subdivisions in (*TESTED_SUBDIVISIONS, DENSE):
        print(f"ARAP default, {subdivisions} subdivisions:", mesh_run(subdivisions=subdivisions), flush=True)
        print(
            f"ARAP off, {subdivisions} subdivisions:", mesh_run(arap_weight=0.0, subdivisions=subdivisions), flush=True
        )
    for subdivisions in TESTED_SUBDIVISIONS:
        print(
            f"the oracle's motion reversed, {subdivisions} subdivisions:",
            mesh_run(motion=-1.0, subdivisions=subdivisions),
            flush=True,
        )


if __name__ == "__main__":
    main()
