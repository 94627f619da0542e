"""glTF 2.0 binary helpers: pack arrays, read accessors back, and animate a mesh with one morph target per frame.

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
from pathlib import Path

import numpy as np

from ..checkpoint import atomic_write_bytes

ENCODINGS = ("auto", "float", "int16")
INTERPOLATIONS = ("LINEAR", "STEP")
QUANTIZATION = "KHR_mesh_quantization"
_COMPONENTS = {  # numpy dtype -> glTF componentType
    np.dtype(np.int8): 5120,
    np.dtype(np.uint8): 5121,
    np.dtype(np.int16): 5122,
    np.dtype(np.uint16): 5123,
    np.dtype(np.uint32): 5125,
    np.dtype(np.float32): 5126,
}
_DTYPES = {v: k for k, v in _COMPONENTS.items()}
_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


class GlbBlob:
    """Appends arrays to a GLTF2's binary chunk (buffer 0): one bufferView (+ accessor) per array, 4-byte aligned."""

    def __init__(self, gltf) -> None:
        import pygltflib

        if gltf.buffers and any(b.uri for b in gltf.buffers):
            gltf.convert_buffers(pygltflib.BufferFormat.BINARYBLOB)
        if len(gltf.buffers) > 1:
            raise ValueError(f"Expected one binary buffer, the file has {len(gltf.buffers)}; merge them first")
        if not gltf.buffers:
            gltf.buffers.append(pygltflib.Buffer(byteLength=0))
        self.gltf = gltf
        self.blob = bytearray(gltf.binary_blob() or b"")

    def view(self, data: np.ndarray, target: int | None = None, stride: int | None = None) -> int:
        import pygltflib

        self.blob.extend(b"\0" * (-len(self.blob) % 4))
        raw = np.ascontiguousarray(data).tobytes()
        self.gltf.bufferViews.append(
            pygltflib.BufferView(
                buffer=0, byteOffset=len(self.blob), byteLength=len(raw), byteStride=stride, target=target
            )
        )
        self.blob.extend(raw)
        return len(self.gltf.bufferViews) - 1

    def accessor(
        self,
        array: np.ndarray | None,
        kind: str,
        count: int | None = None,
        component: np.dtype | None = None,
        target: int | None = None,
        normalized: bool = False,
        bounds: tuple[list, list] | None = None,
        sparse=None,
    ) -> int:
        """Accessor over `array` [N, width] (or none: zeros, or sparse); VEC3 of 2-byte types get an 8-byte stride."""
        import pygltflib

        view, stride = None, None
        if array is not None:
            array = np.ascontiguousarray(array)
            component = array.dtype
            count = array.shape[0] if kind != "SCALAR" else array.size
            if target == pygltflib.ARRAY_BUFFER and array.dtype.itemsize * _WIDTHS[kind] % 4:
                padded = np.zeros((array.shape[0], 4), dtype=array.dtype)  # vertex elements align to 4 bytes
                padded[:, : _WIDTHS[kind]] = array.reshape(array.shape[0], -1)
                array, stride = padded, padded.strides[0]
            view = self.view(array, target, stride)
        accessor = pygltflib.Accessor(
            bufferView=view,
            byteOffset=0 if view is not None else None,
            componentType=_COMPONENTS[np.dtype(component)],
            normalized=normalized or None,
            count=int(count),
            type=kind,
            sparse=sparse,
        )
        if bounds is not None:
            accessor.min, accessor.max = bounds
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1

    def finish(self) -> None:
        """Store the blob back in the GLTF2 (call once all arrays are added)."""
        self.blob.extend(b"\0" * (-len(self.blob) % 4))
        self.gltf.buffers[0].byteLength = len(self.blob)
        self.gltf.set_binary_blob(bytes(self.blob))


def read_accessor(gltf, index: int) -> np.ndarray:
    """Values [count, width] of accessor `index` as float64 (normalized integers mapped as the spec says)."""
    accessor = gltf.accessors[index]
    dtype, width = _DTYPES[accessor.componentType], _WIDTHS[accessor.type]
    blob = gltf.binary_blob() or b""

    def from_view(view_index: int, offset: int, count: int, dtype: np.dtype, width: int) -> np.ndarray:
        view = gltf.bufferViews[view_index]
        stride = view.byteStride or dtype.itemsize * width
        start = (view.byteOffset or 0) + (offset or 0)
        rows = np.frombuffer(blob, dtype=np.uint8, count=stride * (count - 1) + dtype.itemsize * width, offset=start)
        rows = np.lib.stride_tricks.as_strided(rows, (count, dtype.itemsize * width), (stride, 1))
        return np.ascontiguousarray(rows).view(dtype).reshape(count, width)

    if accessor.bufferView is None:
        values = np.zeros((accessor.count, width), dtype=dtype)
    else:
        values = from_view(accessor.bufferView, accessor.byteOffset, accessor.count, dtype, width).copy()
    if accessor.sparse is not None:
        sparse = accessor.sparse
        idx = from_view(
            sparse.indices.bufferView,
            sparse.indices.byteOffset,
            sparse.count,
            _DTYPES[sparse.indices.componentType],
            1,
        )
        values[idx[:, 0]] = from_view(sparse.values.bufferView, sparse.values.byteOffset, sparse.count, dtype, width)
    out = values.astype(np.float64)
    if accessor.normalized:
        out = np.maximum(out / np.iinfo(dtype).max, -1.0)
    return out


def glb_bytes(gltf) -> bytes:
    return b"".join(gltf.save_to_bytes())


def write_glb(gltf, path: str | Path) -> Path:
    """Atomic GLB write."""
    return atomic_write_bytes(path, glb_bytes(gltf))


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
    import pygltflib

    if encoding not in ENCODINGS or interpolation not in INTERPOLATIONS:
        raise ValueError(f"encoding must be one of {ENCODINGS} and interpolation one of {INTERPOLATIONS}")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
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
        _, sparse = _float_size(delta)
        prim.targets = []
        for k in range(frames):
            d = delta[k]
            bounds = ([float(v) for v in d.min(0)], [float(v) for v in d.max(0)])
            if scales[k] == 0:
                acc = blob.accessor(None, "VEC3", count=d.shape[0], component=np.float32, bounds=bounds)
            elif chosen == "int16":
                q = np.round(d / scales[k] * 32767).astype(np.int16)
                max_error = max(max_error, float(np.abs(q / 32767 * scales[k] - d).max()))
                qb = ([int(v) for v in q.min(0)], [int(v) for v in q.max(0)])
                acc = blob.accessor(q, "VEC3", target=pygltflib.ARRAY_BUFFER, normalized=True, bounds=qb)
            elif sparse[k]:
                moving = np.nonzero((d != 0).any(-1))[0]
                index_dtype = np.uint16 if d.shape[0] < 65536 else np.uint32
                indices = pygltflib.AccessorSparseIndices(
                    bufferView=blob.view(moving.astype(index_dtype)), componentType=_COMPONENTS[np.dtype(index_dtype)]
                )
                values = pygltflib.AccessorSparseValues(bufferView=blob.view(d[moving]))
                sparse_acc = pygltflib.Sparse(count=int(moving.size), indices=indices, values=values)
                acc = blob.accessor(None, "VEC3", d.shape[0], np.float32, bounds=bounds, sparse=sparse_acc)
                sparse_frames += 1
            else:
                acc = blob.accessor(d, "VEC3", target=pygltflib.ARRAY_BUFFER, bounds=bounds)
            prim.targets.append(pygltflib.Attributes(POSITION=acc))
    if chosen == "int16":
        for key in ("extensionsUsed", "extensionsRequired"):
            listed = getattr(gltf, key)
            if QUANTIZATION not in listed:
                listed.append(QUANTIZATION)
    mesh.weights = [0.0] * frames
    mesh.extras = {**(mesh.extras or {}), "targetNames": names}

    # Keys at k / fps, k = 0..F: frame k is fully on at its key; the last key holds the last frame to F / fps.
    times = np.arange(frames + 1, dtype=np.float32) / np.float32(fps)
    on = scales.astype(np.float32) if chosen == "int16" else np.ones(frames, np.float32)
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
    gltf.animations.append(animation)
    blob.finish()
    return MorphReport(chosen, len(blob.blob) - start, max_error, sparse_frames)


__all__ = ["ENCODINGS", "GlbBlob", "MorphReport", "add_morph_animation", "glb_bytes", "read_accessor", "write_glb"]
