"""Animated mesh of a deformation-field scene: one canonical mesh whose vertices the field moves, as morph targets.

The field maps an observed point x_d at time t to the canonical point x_c = x_d + d(x_d, t). A canonical vertex
x_c therefore sits at the x_d solving x_d + d(x_d, t) = x_c, found by the fixed-point iteration
x_d <- x_c - d(x_d, t) (batched over vertices, warm-started from the previous frame). It converges where d is a
contraction (|dd/dx| < 1), which smooth, TV-regularised motion is; vertices left with a residual above the
tolerance are reported (count and largest residual), never hidden: they keep their best iterate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..gltf.accessors import GlbBlob
from ..gltf.container import write_glb
from ..gltf.morph import ENCODINGS, INTERPOLATIONS, MorphReport, add_morph_animation
from .mesh import Mesh, MeshConfig, evaluate_in_chunks, extract_mesh, mesh_primitive, vertex_colour_material


@dataclass(frozen=True)
class AnimatedMeshConfig:
    """Canonical mesh, inverse warp and GLB settings."""

    mesh: MeshConfig = field(default_factory=lambda: MeshConfig(resolution=256))
    """Marching cubes of the canonical field (resolution, density threshold, bound)."""
    target_faces: int = 50_000
    """Decimate the canonical mesh to about this many faces (0 keeps marching cubes' faces)."""
    num_frames: int = 64
    """Frames at times k / (num_frames - 1), one morph target each."""
    fps: float = 25.0
    """Playback rate of the animation (the clip lasts num_frames / fps seconds)."""
    inverse_iterations: int = 50
    """Most fixed-point iterations per frame."""
    inverse_tolerance: float = 1e-4
    """A vertex has converged when |x_d + d(x_d, t) - x_c| is below this (world units)."""
    encoding: str = "auto"
    """Morph target storage: 'auto', 'float' or 'int16' (see gltf/morph.py)."""
    interpolation: str = "LINEAR"
    """'LINEAR' blends consecutive frames during playback, 'STEP' holds each one."""

    def __post_init__(self) -> None:
        if self.target_faces < 0 or self.num_frames < 1 or self.inverse_iterations < 1:
            raise ValueError(
                f"Need target_faces >= 0, num_frames >= 1, inverse_iterations >= 1; got {self.target_faces}, "
                f"{self.num_frames}, {self.inverse_iterations}"
            )
        if not (self.fps > 0 and self.inverse_tolerance > 0):
            raise ValueError(f"fps and inverse_tolerance must be > 0, got {self.fps}, {self.inverse_tolerance}")
        if self.encoding not in ENCODINGS or self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, interpolation one of {INTERPOLATIONS}")

    def times(self) -> list[float]:
        return [k / max(self.num_frames - 1, 1) for k in range(self.num_frames)]


@dataclass
class InverseWarpStats:
    """How well the inverse warp solved x_d + d(x_d, t) = x_c, per frame."""

    max_residual: list[float]
    """Largest |x_d + d(x_d, t) - x_c| per frame (world units)."""
    mean_residual: list[float]
    """Mean residual per frame."""
    iterations: list[int]
    """Fixed-point iterations run per frame."""
    unconverged: int
    """Vertex-frames whose residual stayed above the tolerance."""


@dataclass
class AnimatedMesh:
    """The exported asset: canonical mesh, per-frame positions and what was measured on the way."""

    mesh: Mesh
    """Canonical mesh (vertices, faces, normals, colours in [0, 1])."""
    positions: np.ndarray
    """[F, V, 3] float32 vertex positions per frame (ComfyUI's MESH: these with the shared faces)."""
    times: list[float]
    """Frame times in [0, 1]."""
    stats: InverseWarpStats
    """Round-trip residuals of the inverse warp."""
    decimation: str
    """What the decimation step did (or why it was skipped)."""


def decimate(mesh: Mesh, target_faces: int) -> tuple[Mesh, str]:
    """Quadric decimation to about `target_faces` faces (fast-simplification); normals recomputed, colours dropped.

    Without fast-simplification the mesh is kept whole, and the returned note says so.
    """
    faces = mesh.faces.shape[0]
    if target_faces == 0 or faces <= target_faces:
        return mesh, f"kept {faces} faces (target {target_faces})"
    try:
        import fast_simplification
    except ImportError:
        note = f"kept {faces} faces: fast-simplification is not installed (pip install fast-simplification)"
        warnings.warn(note, stacklevel=2)
        return mesh, note
    vertices, new_faces = fast_simplification.simplify(
        mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32), target_reduction=1 - target_faces / faces
    )
    vertices, new_faces = vertices.astype(np.float32), new_faces.astype(np.int64)
    return Mesh(
        vertices, new_faces, vertex_normals(vertices, new_faces)
    ), f"decimated {faces} -> {len(new_faces)} faces"


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals [V, 3] of a counter-clockwise triangle mesh."""
    tri = vertices[faces]
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.where(length > 1e-12, normals / np.maximum(length, 1e-12), np.array([0.0, 1.0, 0.0])).astype(np.float32)


def canonical_mesh(field, config: AnimatedMeshConfig, device: str | torch.device = "cpu") -> tuple[Mesh, str]:
    """Marching cubes of the canonical field, decimated, with uint8-ready albedo colours at the final vertices."""
    canonical = field.canonical
    mesh = extract_mesh(canonical.density, None, config.mesh, device)
    mesh, note = decimate(mesh, config.target_faces)
    vertices = torch.from_numpy(mesh.vertices)
    albedo = evaluate_in_chunks(lambda p: canonical(p)[1], vertices, config.mesh.chunk_size, device)
    mesh.colors = albedo.clamp(0, 1).numpy()
    return mesh, note


@torch.no_grad()
def invert_deformation(
    field, targets: Tensor, t: float, iterations: int, tolerance: float, start: Tensor | None = None
) -> tuple[Tensor, Tensor, int]:
    """x_d [V, 3] with x_d + d(x_d, t) ~ targets [V, 3], its residual norms [V] and the iterations run.

    Relaxed fixed point: x <- x_best - a r(x_best) with r(x) = x + d(x, t) - x_c. With a = 1 this is
    x <- x_c - d(x); a vertex whose residual grows goes back to its best iterate with a halved (a doubles again,
    up to 1, after a success), which also converges where d is not a contraction but x + d is still one-to-one.
    Stops once every residual is below tolerance.
    """
    x = targets.clone() if start is None else start.clone()
    best, best_r = x.clone(), torch.zeros_like(x)
    best_norm = torch.full(targets.shape[:1], float("inf"), device=targets.device)
    alpha = torch.ones_like(best_norm)
    for step in range(1, iterations + 1):
        r = x + field.displacement(x, t) - targets
        norm = r.norm(dim=-1)
        better = norm < best_norm
        best = torch.where(better[:, None], x, best)
        best_r = torch.where(better[:, None], r, best_r)
        best_norm = torch.where(better, norm, best_norm)
        if float(best_norm.max()) < tolerance:  # a host sync per iteration: an export, not a training loop
            return best, best_norm, step
        alpha = torch.where(better, (alpha * 2).clamp(max=1.0), alpha / 2)
        x = best - alpha[:, None] * best_r
    return best, best_norm, iterations


def frame_positions(
    field, vertices: np.ndarray, times: list[float], config: AnimatedMeshConfig, device: str | torch.device = "cpu"
) -> tuple[np.ndarray, InverseWarpStats]:
    """Observed positions [F, V, 3] of canonical vertices [V, 3] at each time (inverse warp, chunked)."""
    targets = torch.from_numpy(vertices).float().to(device)
    chunk = config.mesh.chunk_size
    out = np.empty((len(times), *vertices.shape), dtype=np.float32)
    stats = InverseWarpStats([], [], [], 0)
    previous = targets
    for k, t in enumerate(times):
        solved, residuals, steps = [], [], 0
        for i in range(0, targets.shape[0], chunk):
            x, r, n = invert_deformation(
                field,
                targets[i : i + chunk],
                t,
                config.inverse_iterations,
                config.inverse_tolerance,
                previous[i : i + chunk],
            )
            solved.append(x)
            residuals.append(r)
            steps = max(steps, n)
        previous = torch.cat(solved)
        residual = torch.cat(residuals)
        out[k] = previous.cpu().numpy()
        stats.max_residual.append(float(residual.max()))
        stats.mean_residual.append(float(residual.mean()))
        stats.iterations.append(steps)
        stats.unconverged += int((residual >= config.inverse_tolerance).sum())
    if stats.unconverged:
        warnings.warn(
            f"Inverse warp: {stats.unconverged} of {len(times) * len(vertices)} vertex-frames did not converge to "
            f"{config.inverse_tolerance:g} in {config.inverse_iterations} iterations (largest residual "
            f"{max(stats.max_residual):.3g}); they keep their best iterate.",
            stacklevel=2,
        )
    return out, stats


def build_morph_gltf(asset: AnimatedMesh, config: AnimatedMeshConfig):
    """One mesh, one node, one morph target per frame and one animation (pygltflib.GLTF2) + the morph report."""
    import pygltflib

    gltf = pygltflib.GLTF2(asset=pygltflib.Asset(generator="comfyui-animate124", version="2.0"))
    blob = GlbBlob(gltf)
    primitive = mesh_primitive(blob, asset.mesh, vertex_colour_material(gltf))
    blob.finish()
    gltf.meshes.append(pygltflib.Mesh(name="animate124", primitives=[primitive]))
    gltf.nodes.append(pygltflib.Node(name="animate124", mesh=0))
    gltf.scenes.append(pygltflib.Scene(nodes=[0]))
    gltf.scene = 0
    report = add_morph_animation(
        gltf, 0, asset.positions, config.fps, config.interpolation, config.encoding, name="deformation"
    )
    gltf.animations[-1].extras = {
        "inverseWarpMaxResidual": max(asset.stats.max_residual),
        "inverseWarpUnconverged": asset.stats.unconverged,
        "decimation": asset.decimation,
    }
    return gltf, report


def export_animated_mesh(
    field, path: str | Path, config: AnimatedMeshConfig | None = None, device: str | torch.device = "cpu"
) -> tuple[AnimatedMesh, MorphReport, int]:
    """Canonical mesh + inverse warp + morph GLB written atomically at `path`; returns (asset, report, bytes)."""
    config = config or AnimatedMeshConfig()
    if not hasattr(field, "canonical") or not hasattr(field, "displacement"):
        raise ValueError(
            f"export_animated_mesh needs a deformation-field scene; got {type(field).__name__} "
            "(4D-grid scenes have no correspondence: use outputs/mesh.py write_animated_glb)"
        )
    mesh, note = canonical_mesh(field, config, device)
    times = config.times()
    positions, stats = frame_positions(field, mesh.vertices, times, config, device)
    asset = AnimatedMesh(mesh, positions, times, stats, note)
    gltf, report = build_morph_gltf(asset, config)
    return asset, report, write_glb(gltf, path).stat().st_size


__all__ = [
    "AnimatedMesh",
    "AnimatedMeshConfig",
    "InverseWarpStats",
    "build_morph_gltf",
    "canonical_mesh",
    "decimate",
    "export_animated_mesh",
    "frame_positions",
    "invert_deformation",
    "vertex_normals",
]
