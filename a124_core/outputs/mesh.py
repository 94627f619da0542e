"""Per-frame meshes of a (dynamic) density field: marching cubes, OBJ sequences and one animated GLB.

The field is passed as callables (nerfacc style), so this module does not depend on the field classes:
`density_fn(points [N, 3]) -> [N]` and `albedo_fn(points [N, 3]) -> [N, 3]` in [0, 1], world y-up, scene
bound [-bound, bound]^3. A dynamic scene is a list of such pairs or a callable `t -> (density_fn, albedo_fn)`.

Animated GLB layout (chosen for what readers actually support): marching cubes gives every frame its own
topology (vertex and face counts change), so morph targets, which need one fixed vertex list, cannot hold
it without resampling. Instead each frame is its own mesh under its own node, all children of one root
node, and one animation switches them with STEP-interpolated scale keys: node k has scale 1 during
[k / fps, (k + 1) / fps) and 0 otherwise (the last frame stays visible at the end). Frame 0 has scale 1 at
rest, the others 0, so viewers that ignore animations show frame 0. trimesh and pygltflib read every frame
mesh; Blender's importer plays scale keys (STEP -> constant interpolation) and converts y-up to z-up itself.
glTF is y-up with +z toward the viewer like our world, so coordinates are written unchanged.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..checkpoint import atomic_write_text
from ..gltf.accessors import GlbBlob
from ..gltf.container import write_glb

DensityFn = Callable[[Tensor], Tensor]  # points [N, 3] -> density [N]
AlbedoFn = Callable[[Tensor], Tensor]  # points [N, 3] -> albedo [N, 3] in [0, 1]


@dataclass(frozen=True)
class MeshConfig:
    """How the density grid is sampled and cut."""

    resolution: int = 128
    """Samples per axis of the grid over [-bound, bound]^3 (voxel size 2 * bound / (resolution - 1))."""
    threshold: float = 10.0
    """Density iso-level of the surface; 10 as the reference's / stable-dreamfusion's mesh export."""
    bound: float = 1.0
    """Half side of the sampled cube (the scene bound, SPEC 2)."""
    chunk_size: int = 65536
    """Points per call to the field callables (limits memory)."""
    close_boundary: bool = True
    """Pad the grid with empty space so surfaces cut by the bound are closed (watertight meshes)."""


@dataclass
class Mesh:
    """A triangle mesh with per-vertex colours."""

    vertices: np.ndarray  # [V, 3] float32, world units
    faces: np.ndarray  # [F, 3] int64, counter-clockwise seen from outside
    normals: np.ndarray  # [V, 3] float32, unit, pointing outward
    colors: np.ndarray | None = None  # [V, 3] float32 in [0, 1]


def _check_config(config: MeshConfig) -> None:
    if config.resolution < 3:
        raise ValueError(f"Mesh resolution must be at least 3 samples per axis, got {config.resolution}.")
    if not config.bound > 0:
        raise ValueError(f"Mesh bound must be positive, got {config.bound}.")
    if config.chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {config.chunk_size}.")
    if not math.isfinite(config.threshold):
        raise ValueError(f"Mesh threshold must be a finite density level, got {config.threshold}.")


@torch.no_grad()
def evaluate_in_chunks(
    fn: Callable[[Tensor], Tensor], points: Tensor, chunk_size: int, device: torch.device
) -> Tensor:
    """Call `fn` over `points` [N, 3] in chunks; returns the float32 CPU results concatenated."""
    outs = []
    for start in range(0, points.shape[0], chunk_size):
        chunk = points[start : start + chunk_size].to(device)
        outs.append(fn(chunk).detach().to("cpu", torch.float32))
    return torch.cat(outs, dim=0)


def sample_density_grid(
    density_fn: DensityFn, config: MeshConfig | None = None, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Density on the grid: [R, R, R] float32, index (i, j, k) <-> (x, y, z) = -bound + (i, j, k) * voxel."""
    config = config or MeshConfig()
    _check_config(config)
    axis = torch.linspace(-config.bound, config.bound, config.resolution)
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    density = evaluate_in_chunks(density_fn, points, config.chunk_size, torch.device(device))
    if density.shape != (points.shape[0],) and density.numel() == points.shape[0]:
        density = density.reshape(-1)
    if density.shape != (points.shape[0],):
        raise ValueError(f"density_fn must map points [N, 3] to densities [N], got {tuple(density.shape)}.")
    return density.reshape(config.resolution, config.resolution, config.resolution).numpy()


def extract_mesh(
    density_fn: DensityFn,
    albedo_fn: AlbedoFn | None = None,
    config: MeshConfig | None = None,
    device: str | torch.device = "cpu",
) -> Mesh:
    """Marching cubes of `density_fn` at `config.threshold`, vertex colours from `albedo_fn` (optional).

    Raises ValueError when the density never crosses the threshold inside the bound (an empty or a full
    cube), naming the density range so the threshold can be chosen.
    """
    from skimage.measure import marching_cubes

    config = config or MeshConfig()
    volume = sample_density_grid(density_fn, config, device)
    if not np.isfinite(volume).all():
        volume = np.nan_to_num(volume, nan=0.0, posinf=np.finfo(np.float32).max, neginf=0.0)
    low, high = float(volume.min()), float(volume.max())
    voxel = 2.0 * config.bound / (config.resolution - 1)
    origin = -config.bound
    if not (low < config.threshold < high):
        raise ValueError(
            f"The density ranges over [{low:.4g}, {high:.4g}] on the grid and never crosses threshold "
            f"{config.threshold:g}; choose a threshold inside that range (MeshConfig.threshold)."
        )
    if config.close_boundary:
        volume = np.pad(volume, 1, mode="constant", constant_values=min(low, config.threshold) - 1.0)
        origin -= voxel
    verts, faces, normals, _ = marching_cubes(
        volume, level=config.threshold, spacing=(voxel, voxel, voxel), gradient_direction="descent"
    )
    verts = (verts + origin).astype(np.float32)
    faces = faces.astype(np.int64)
    # skimage's winding is clockwise seen from outside for "descent" fields: flip to glTF/OBJ's CCW.
    faces = faces[:, [0, 2, 1]]
    norms = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(norms > 1e-12, normals / np.maximum(norms, 1e-12), np.array([0.0, 1.0, 0.0]))
    colors = None
    if albedo_fn is not None:
        albedo = evaluate_in_chunks(albedo_fn, torch.from_numpy(verts), config.chunk_size, torch.device(device))
        if albedo.shape != (verts.shape[0], 3):
            raise ValueError(f"albedo_fn must map points [N, 3] to colours [N, 3], got {tuple(albedo.shape)}.")
        colors = albedo.clamp(0.0, 1.0).numpy().astype(np.float32)
    return Mesh(vertices=verts, faces=faces, normals=normals.astype(np.float32), colors=colors)


def extract_mesh_sequence(
    source: Iterable[tuple[DensityFn, AlbedoFn | None]] | Callable[[float], tuple[DensityFn, AlbedoFn | None]],
    times: Sequence[float] | None = None,
    config: MeshConfig | None = None,
    device: str | torch.device = "cpu",
) -> list[Mesh]:
    """One mesh per frame of a dynamic scene.

    Args:
        source: a list/iterable of (density_fn, albedo_fn) pairs, one per frame, or a callable
            t -> (density_fn, albedo_fn) evaluated at each of `times`.
        times: frame times in [0, 1]; required with a callable source (e.g. [k / 63 for k in range(64)]).
        config: grid settings shared by every frame.
        device: where the points are sent before calling the field.
    """
    if callable(source):
        if times is None or len(times) == 0:
            raise ValueError("A callable scene needs `times` (frame times in [0, 1], e.g. k / (F - 1)).")
        pairs = (source(float(t)) for t in times)
    else:
        if times is not None:
            raise ValueError("`times` is only used with a callable scene; a list of (density_fn, albedo_fn) has none.")
        pairs = iter(source)
    meshes = []
    for index, (density_fn, albedo_fn) in enumerate(pairs):
        try:
            meshes.append(extract_mesh(density_fn, albedo_fn, config, device))
        except ValueError as err:
            where = f"frame {index}" + (f" (t = {float(times[index]):.4g})" if times is not None else "")
            raise ValueError(f"{where}: {err}") from err
    if not meshes:
        raise ValueError("The scene produced no frames; pass at least one (density_fn, albedo_fn) pair.")
    return meshes


def write_obj(mesh: Mesh, path: str | Path) -> Path:
    """OBJ with per-vertex colours as `v x y z r g b` (read by Blender, MeshLab and trimesh) and normals."""
    path = Path(path)
    columns = [mesh.vertices] if mesh.colors is None else [mesh.vertices, mesh.colors]
    vertex_rows = np.concatenate(columns, axis=1)
    faces = np.repeat(mesh.faces + 1, 2, axis=1)  # "f a//a b//b c//c": position and normal share indices
    buf = io.StringIO()
    buf.write("# Animate124 mesh (y-up)\n")
    np.savetxt(buf, vertex_rows, fmt="v" + " %.6f" * vertex_rows.shape[1])
    np.savetxt(buf, mesh.normals, fmt="vn %.6f %.6f %.6f")
    np.savetxt(buf, faces, fmt="f %d//%d %d//%d %d//%d")
    return atomic_write_text(path, buf.getvalue())


def write_obj_sequence(meshes: Sequence[Mesh], folder: str | Path, stem: str = "frame") -> list[Path]:
    """`folder/<stem>_0000.obj`, ... one OBJ per frame (the layout Blender's "import OBJ sequence" add-ons read)."""
    if not meshes:
        raise ValueError("write_obj_sequence needs at least one mesh.")
    folder = Path(folder)
    return [write_obj(mesh, folder / f"{stem}_{i:04d}.obj") for i, mesh in enumerate(meshes)]


def write_animated_glb(meshes: Sequence[Mesh], path: str | Path, fps: float = 25.0) -> Path:
    """One GLB with a mesh + node per frame and a STEP scale animation that shows one frame at a time (atomic).

    See the module docstring for why per-frame nodes are used instead of morph targets (a deformation field's
    fixed topology uses them: outputs/animated_mesh.py). Vertex colours are uint8. A single mesh gives a plain
    static GLB (no animation).
    """
    if not meshes:
        raise ValueError("write_animated_glb needs at least one mesh.")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}.")
    return write_glb(_build_gltf(meshes, fps), path)


def mesh_primitive(blob: GlbBlob, mesh: Mesh, material: int | None = None):
    """A triangle primitive of `mesh`: float32 POSITION (with bounds) and NORMAL, uint8 COLOR_0, uint32 indices."""
    import pygltflib

    attributes = pygltflib.Attributes(
        POSITION=blob.accessor(
            mesh.vertices.astype(np.float32),
            "VEC3",
            target=pygltflib.ARRAY_BUFFER,
            bounds=([float(v) for v in mesh.vertices.min(0)], [float(v) for v in mesh.vertices.max(0)]),
        ),
        NORMAL=blob.accessor(mesh.normals.astype(np.float32), "VEC3", target=pygltflib.ARRAY_BUFFER),
    )
    if mesh.colors is not None:
        colours = np.round(np.clip(mesh.colors, 0.0, 1.0) * 255).astype(np.uint8)
        attributes.COLOR_0 = blob.accessor(colours, "VEC3", target=pygltflib.ARRAY_BUFFER, normalized=True)
    indices = blob.accessor(mesh.faces.astype(np.uint32).reshape(-1), "SCALAR", target=pygltflib.ELEMENT_ARRAY_BUFFER)
    return pygltflib.Primitive(attributes=attributes, indices=indices, material=material, mode=pygltflib.TRIANGLES)


def vertex_colour_material(gltf) -> int:
    """Append the unlit-looking PBR material the vertex colours multiply (white, rough, not metallic)."""
    import pygltflib

    pbr = pygltflib.PbrMetallicRoughness(baseColorFactor=[1.0, 1.0, 1.0, 1.0], metallicFactor=0.0)
    pbr.roughnessFactor = 1.0
    # alphaCutoff=None: pygltflib before 1.16.1 defaults it to 0.5, which the validator rejects in OPAQUE mode.
    material = pygltflib.Material(name="vertex_colour", pbrMetallicRoughness=pbr, alphaCutoff=None)
    gltf.materials.append(material)
    return len(gltf.materials) - 1


def _build_gltf(meshes: Sequence[Mesh], fps: float):
    """The glTF document of `write_animated_glb` (pygltflib.GLTF2 with its binary blob set)."""
    import pygltflib

    gltf = pygltflib.GLTF2(asset=pygltflib.Asset(generator="comfyui-animate124", version="2.0"))
    material = vertex_colour_material(gltf)
    packer = GlbBlob(gltf)
    frame_nodes = []
    for index, mesh in enumerate(meshes):
        primitive = mesh_primitive(packer, mesh, material)
        gltf.meshes.append(pygltflib.Mesh(name=f"frame_{index:04d}", primitives=[primitive]))
        scale = [1.0, 1.0, 1.0] if index == 0 else [0.0, 0.0, 0.0]
        gltf.nodes.append(pygltflib.Node(name=f"frame_{index:04d}", mesh=index, scale=scale))
        frame_nodes.append(len(gltf.nodes) - 1)
    gltf.nodes.append(pygltflib.Node(name="animate124", children=frame_nodes))
    gltf.scenes.append(pygltflib.Scene(nodes=[len(gltf.nodes) - 1]))
    gltf.scene = 0
    count = len(meshes)
    if count > 1:
        # Keys at k / fps for k = 0..count; node i is visible on [i / fps, (i + 1) / fps), the last node to the end.
        times = (np.arange(count + 1, dtype=np.float32) / np.float32(fps)).reshape(-1, 1)
        time_accessor = packer.accessor(times.reshape(-1), "SCALAR", bounds=([0.0], [float(times[-1, 0])]))
        animation = pygltflib.Animation(name="frames")
        for i, node in enumerate(frame_nodes):
            visible = np.zeros(count + 1, dtype=np.float32)
            visible[i] = 1.0
            visible[count] = 1.0 if i == count - 1 else 0.0
            scales = np.repeat(visible[:, None], 3, axis=1)
            output = packer.accessor(scales, "VEC3")
            animation.samplers.append(
                pygltflib.AnimationSampler(input=time_accessor, output=output, interpolation="STEP")
            )
            target = pygltflib.AnimationChannelTarget(node=node, path="scale")
            animation.channels.append(pygltflib.AnimationChannel(sampler=len(animation.samplers) - 1, target=target))
        gltf.animations.append(animation)
    packer.finish()
    return gltf
