"""Animate a glTF mesh with one morph target per frame.

`add_morph_animation` works on any pygltflib GLTF2 (one we build, or a user's GLB with its UVs, textures and
materials): it adds to one mesh a morph target per frame holding POSITION deltas from the mesh's own vertices,
and one animation whose weights sampler shows frame k at k / fps (one-hot weights, STEP or LINEAR), lasting
F / fps seconds. Two encodings of the deltas:
- "float": float32, each frame dense or sparse (indices + values of the vertices that move), whichever is smaller;
  core glTF, every reader.
- "int16": KHR_mesh_quantization, normalized SHORT deltas q = round(delta / s_k * 32767) with the frame's scale
  s_k = max |delta| carried by the animation weight (weight s_k instead of 1): 8 bytes per vertex (stride-aligned)
  instead of 12, error <= s_k / 65534 per coordinate. Needs a reader with KHR_mesh_quantization (three.js,
  the Khronos validator, Blender's importer).
"auto" picks the smaller file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .accessors import COMPONENT_TYPES, GlbBlob, read_accessor

ENCODINGS = ("auto", "float", "int16")
INTERPOLATIONS = ("LINEAR", "STEP")
QUANTIZATION = "KHR_mesh_quantization"


@dataclass
class MorphReport:
    """What add_morph_animation wrote."""

    encoding: str
    """'float' or 'int16'."""
    bytes_added: int
    """Binary bytes the morph targets and the animation added."""
    max_error: float
    """Largest quantisation error of a delta coordinate (0 for float)."""
    sparse_frames: int
    """Frames stored as sparse accessors (float encoding)."""


def _float_size(deltas: np.ndarray) -> tuple[int, np.ndarray]:
    """Bytes of the float encoding and, per frame, whether the sparse form is smaller; deltas [F, V, 3]."""
    vertices = deltas.shape[1]
    moving = (deltas != 0).any(-1).sum(-1)  # [F]
    index_bytes = 2 if vertices < 65536 else 4
    sparse = moving * (index_bytes + 12) + 8 < vertices * 12
    return int(np.where(sparse, moving * (index_bytes + 12) + 8, vertices * 12).sum()), sparse


def add_morph_animation(
    gltf,
    mesh_index: int,
    frame_positions: np.ndarray | Sequence[np.ndarray],
    fps: float,
    interpolation: str = "LINEAR",
    encoding: str = "auto",
    target_names: Sequence[str] | None = None,
    name: str = "animation",
) -> MorphReport:
    """Animate mesh `mesh_index` of `gltf` with one morph target per frame (see the module docstring).

    Args:
        frame_positions: [F, V, 3] vertex positions per frame (the mesh's POSITION order), or one such array per
            primitive of the mesh (all with the same F).
        fps: playback rate; the clip lasts F / fps seconds.
        interpolation: 'LINEAR' (blends consecutive frames) or 'STEP'.
        encoding: 'auto', 'float' or 'int16'.
    """
    if encoding not in ENCODINGS or interpolation not in INTERPOLATIONS:
        raise ValueError(f"encoding must be one of {ENCODINGS} and interpolation one of {INTERPOLATIONS}")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    mesh, nodes, deltas = _check_mesh(gltf, mesh_index, frame_positions)
    frames = deltas[0].shape[0]
    names = list(target_names) if target_names is not None else [f"frame_{k:04d}" for k in range(frames)]
    if len(names) != frames:
        raise ValueError(f"Got {len(names)} target names for {frames} frames")

    float_bytes = sum(_float_size(d)[0] for d in deltas)
    int16_bytes = sum(d.shape[0] * d.shape[1] * 8 for d in deltas)
    chosen = encoding if encoding != "auto" else ("int16" if int16_bytes < float_bytes else "float")
    scales = np.max([np.abs(d).reshape(frames, -1).max(-1) for d in deltas], axis=0)  # [F]
    blob = GlbBlob(gltf)
    start = len(blob.blob)
    sparse_frames, max_error = 0, 0.0
    for prim, delta in zip(mesh.primitives, deltas):
        targets, sparse, error = _morph_targets(blob, delta, scales, chosen)
        prim.targets = targets
        sparse_frames, max_error = sparse_frames + sparse, max(max_error, error)
    if chosen == "int16":
        for key in ("extensionsUsed", "extensionsRequired"):
            listed = getattr(gltf, key)
            if QUANTIZATION not in listed:
                listed.append(QUANTIZATION)
    mesh.weights = [0.0] * frames
    mesh.extras = {**(mesh.extras or {}), "targetNames": names}
    on = scales.astype(np.float32) if chosen == "int16" else np.ones(frames, np.float32)
    gltf.animations.append(_weights_animation(blob, nodes, on, fps, interpolation, name))
    blob.finish()
    return MorphReport(chosen, len(blob.blob) - start, max_error, sparse_frames)


def _check_mesh(gltf, mesh_index: int, frame_positions) -> tuple[object, list[int], list[np.ndarray]]:
    """(the mesh, the nodes that show it, per primitive the deltas [F, V, 3] float32 from its own positions)."""
    if not 0 <= mesh_index < len(gltf.meshes):
        raise ValueError(f"mesh_index {mesh_index} is out of range: the file has {len(gltf.meshes)} meshes")
    mesh = gltf.meshes[mesh_index]
    per_primitive = [frame_positions] if isinstance(frame_positions, np.ndarray) else list(frame_positions)
    if len(per_primitive) != len(mesh.primitives):
        raise ValueError(
            f"Got positions for {len(per_primitive)} primitives; mesh {mesh_index} has {len(mesh.primitives)}"
        )
    if any(p.targets for p in mesh.primitives):
        raise ValueError(f"Mesh {mesh_index} already has morph targets; animate a mesh without them")
    nodes = [i for i, node in enumerate(gltf.nodes) if node.mesh == mesh_index]
    if not nodes:
        raise ValueError(f"No node shows mesh {mesh_index}; add it to the scene before animating it")
    deltas = []
    for prim, positions in zip(mesh.primitives, per_primitive):
        base = read_accessor(gltf, prim.attributes.POSITION)
        positions = np.asarray(positions, dtype=np.float64)
        if positions.ndim != 3 or positions.shape[1:] != base.shape or not np.isfinite(positions).all():
            raise ValueError(f"frame_positions must be finite [F, {base.shape[0]}, 3], got {positions.shape}")
        deltas.append((positions - base).astype(np.float32))
    frames = deltas[0].shape[0]
    if frames < 1 or any(d.shape[0] != frames for d in deltas):
        raise ValueError("Every primitive needs the same number (>= 1) of frames")
    return mesh, nodes, deltas


def _morph_targets(blob: GlbBlob, delta: np.ndarray, scales: np.ndarray, encoding: str) -> tuple[list, int, float]:
    """One POSITION target per frame of one primitive's deltas [F, V, 3]: (targets, sparse frames, max error)."""
    import pygltflib

    _, sparse = _float_size(delta)
    targets, sparse_frames, max_error = [], 0, 0.0
    for k, d in enumerate(delta):
        bounds = ([float(v) for v in d.min(0)], [float(v) for v in d.max(0)])
        if scales[k] == 0:
            acc = blob.accessor(None, "VEC3", count=d.shape[0], component=np.float32, bounds=bounds)
        elif encoding == "int16":
            q = np.round(d / scales[k] * 32767).astype(np.int16)
            max_error = max(max_error, float(np.abs(q / 32767 * scales[k] - d).max()))
            qb = ([int(v) for v in q.min(0)], [int(v) for v in q.max(0)])
            acc = blob.accessor(q, "VEC3", target=pygltflib.ARRAY_BUFFER, normalized=True, bounds=qb)
        elif sparse[k]:
            moving = np.nonzero((d != 0).any(-1))[0]
            index_dtype = np.uint16 if d.shape[0] < 65536 else np.uint32
            indices = pygltflib.AccessorSparseIndices(
                bufferView=blob.view(moving.astype(index_dtype)), componentType=COMPONENT_TYPES[np.dtype(index_dtype)]
            )
            values = pygltflib.AccessorSparseValues(bufferView=blob.view(d[moving]))
            sparse_acc = pygltflib.Sparse(count=int(moving.size), indices=indices, values=values)
            acc = blob.accessor(None, "VEC3", d.shape[0], np.float32, bounds=bounds, sparse=sparse_acc)
            sparse_frames += 1
        else:
            acc = blob.accessor(d, "VEC3", target=pygltflib.ARRAY_BUFFER, bounds=bounds)
        targets.append(pygltflib.Attributes(POSITION=acc))
    return targets, sparse_frames, max_error


def _weights_animation(blob: GlbBlob, nodes: list[int], on: np.ndarray, fps: float, interpolation: str, name: str):
    """Keys at k / fps, k = 0..F: frame k fully on (weight `on[k]`) at its key; the last key holds the last frame
    to F / fps. One weights channel per node that shows the mesh."""
    import pygltflib

    frames = on.shape[0]
    times = np.arange(frames + 1, dtype=np.float32) / np.float32(fps)
    weights = np.zeros((frames + 1, frames), np.float32)
    weights[np.arange(frames), np.arange(frames)] = on
    weights[frames, frames - 1] = on[-1]
    time_acc = blob.accessor(times, "SCALAR", bounds=([float(times[0])], [float(times[-1])]))
    weight_acc = blob.accessor(weights.reshape(-1), "SCALAR")
    animation = pygltflib.Animation(name=name)
    animation.samplers.append(
        pygltflib.AnimationSampler(input=time_acc, output=weight_acc, interpolation=interpolation)
    )
    for node in nodes:
        target = pygltflib.AnimationChannelTarget(node=node, path="weights")
        animation.channels.append(pygltflib.AnimationChannel(sampler=0, target=target))
    return animation


__all__ = ["ENCODINGS", "INTERPOLATIONS", "MorphReport", "add_morph_animation"]
