"""What writing the animation back onto the user's mesh starts from: one self-contained GLB and vertex positions
per glTF primitive in that primitive's own (node-local) coordinates.

- GLB input: the original bytes, untouched (materials, extensions, extras, node tree all kept).
- glTF input: the same document packed into a GLB when it was read (`gltf.container.pack_gltf`), nothing else changed.
- OBJ / PLY / STL / MESH tensors: a GLB written from the asset, one mesh with one primitive per part in the
  asset's vertex order: positions, UVs (v flipped back to glTF's top-left origin), COLOR_0 (linear) and a
  material whose factor and PNG texture reproduce the colours the field was fitted to.
`PrimitiveSegment`s of the returned list say which asset vertices are which primitive's, in accessor order.
`write_animated_source` adds one morph target per frame to every animated glTF mesh of that GLB and joins their
weight channels into one animation clip, then writes it atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..gltf.container import glb_bytes, write_glb
from ..gltf.morph import MorphReport, add_morph_animation
from .asset import MeshAsset, PrimitiveSegment, srgb_to_linear
from .normalise import MeshTransform


class _Blob:
    """Binary chunk under construction: aligned bufferViews and their accessors."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def view(self, raw: bytes, target: int | None = None) -> int:
        self.data += b"\0" * (-len(self.data) % 4)
        view = {"buffer": 0, "byteOffset": len(self.data), "byteLength": len(raw)}
        if target is not None:
            view["target"] = target
        self.views.append(view)
        self.data += raw
        return len(self.views) - 1

    def accessor(self, array: np.ndarray, kind: str, target: int, minmax: bool = False) -> int:
        component = {np.dtype(np.float32): 5126, np.dtype(np.uint32): 5125}[array.dtype]
        accessor = {
            "bufferView": self.view(array.tobytes(), target),
            "componentType": component,
            "count": int(array.shape[0]),
            "type": kind,
        }
        if minmax:
            accessor["min"], accessor["max"] = array.min(0).tolist(), array.max(0).tolist()
        self.accessors.append(accessor)
        return len(self.accessors) - 1


def asset_glb(asset: MeshAsset) -> bytes:
    """The asset as one GLB mesh, one primitive per segment, vertices in asset order (see module docstring)."""
    from PIL import Image

    blob = _Blob()
    primitives, materials, images = [], [], []
    texture_index: dict[int, int] = {}
    for seg in asset.segments:
        v = slice(seg.start, seg.start + seg.count)
        faces = asset.faces[seg.face_start : seg.face_start + seg.face_count] - seg.start
        attributes = {"POSITION": blob.accessor(asset.vertices[v].astype(np.float32), "VEC3", 34962, minmax=True)}
        material = asset.materials[int(asset.face_materials[seg.face_start])] if seg.face_count else asset.materials[0]
        pbr = {"baseColorFactor": [*srgb_to_linear(material.base_color).tolist(), 1.0], "metallicFactor": 0.0}
        if asset.uv is not None:
            uv = asset.uv[v].astype(np.float32).copy()
            uv[:, 1] = 1.0 - uv[:, 1]
            attributes["TEXCOORD_0"] = blob.accessor(uv, "VEC2", 34962)
        if asset.vertex_colors is not None:
            attributes["COLOR_0"] = blob.accessor(srgb_to_linear(asset.vertex_colors[v]), "VEC3", 34962)
        if material.texture is not None and asset.uv is not None:
            key = id(material.texture)
            if key not in texture_index:
                png = io.BytesIO()
                Image.fromarray(material.texture).save(png, format="PNG")
                images.append({"bufferView": blob.view(png.getvalue()), "mimeType": "image/png"})
                texture_index[key] = len(images) - 1
            pbr["baseColorTexture"] = {"index": texture_index[key]}
        materials.append({"name": material.name or f"material_{len(materials)}", "pbrMetallicRoughness": pbr})
        indices = blob.accessor(faces.astype(np.uint32).reshape(-1), "SCALAR", 34963)
        primitives.append({"attributes": attributes, "indices": indices, "material": len(materials) - 1})
    document = {
        "asset": {"version": "2.0", "generator": "comfyui-animate124"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": asset.name}],
        "meshes": [{"primitives": primitives, "name": asset.name}],
        "materials": materials,
        "accessors": blob.accessors,
        "bufferViews": blob.views,
        "buffers": [{"byteLength": len(blob.data) + (-len(blob.data) % 4)}],
    }
    if images:
        document["images"] = images
        document["textures"] = [{"source": i} for i in range(len(images))]
    return glb_bytes(document, bytes(blob.data))


def source_glb(asset: MeshAsset) -> tuple[bytes, list[PrimitiveSegment]]:
    """The GLB to add morph targets to and the asset's vertex ranges of its primitives (accessor order)."""
    if asset.source.format in ("glb", "gltf"):  # a .gltf was packed into a GLB when it was read
        return asset.source.data, asset.segments  # type: ignore[return-value]
    segments = [
        PrimitiveSegment(0, i, s.start, s.count, s.face_start, s.face_count, np.eye(4))
        for i, s in enumerate(asset.segments)
    ]
    return asset_glb(asset), segments


def primitive_positions(
    segments: list[PrimitiveSegment], transform: MeshTransform, scene_positions: np.ndarray
) -> dict[int, list[np.ndarray]]:
    """Per glTF mesh index, per primitive (in primitive order): positions [frames, count, 3] float32 in the
    primitive's local coordinates, from scene-space positions [frames, V, 3] of the asset's vertices."""
    world = transform.to_file(np.asarray(scene_positions, dtype=np.float64))
    out: dict[int, list[tuple[int, np.ndarray]]] = {}
    for seg in segments:
        inverse = np.linalg.inv(seg.matrix)
        local = world[:, seg.start : seg.start + seg.count] @ inverse[:3, :3].T + inverse[:3, 3]
        out.setdefault(seg.mesh, []).append((seg.primitive, local.astype(np.float32)))
    return {mesh: [p for _, p in sorted(prims, key=lambda item: item[0])] for mesh, prims in out.items()}


def write_animated_source(
    asset: MeshAsset,
    transform: MeshTransform,
    scene_positions: np.ndarray,
    path: str | Path,
    fps: float,
    interpolation: str = "LINEAR",
    encoding: str = "auto",
) -> tuple[Path, list[MorphReport]]:
    """The user's mesh (source_glb) with its vertices animated by `scene_positions` [frames, V, 3] (scene units,
    asset order): a morph target per frame on each glTF mesh, one clip named 'animate124'; written atomically."""
    import pygltflib

    positions = np.asarray(scene_positions)
    if positions.ndim != 3 or positions.shape[1:] != asset.vertices.shape:
        raise ValueError(f"scene_positions must be [frames, {asset.num_vertices}, 3], got {positions.shape}")
    data, segments = source_glb(asset)
    gltf = pygltflib.GLTF2.load_from_bytes(data)
    first_new = len(gltf.animations)
    reports = [
        add_morph_animation(gltf, mesh, per_primitive, fps, interpolation, encoding, name="animate124")
        for mesh, per_primitive in sorted(primitive_positions(segments, transform, positions).items())
    ]
    clip, extra = gltf.animations[first_new], gltf.animations[first_new + 1 :]
    for animation in extra:  # one clip: every mesh's weights channel driven by its own sampler in the first one
        offset = len(clip.samplers)
        clip.samplers.extend(animation.samplers)
        for channel in animation.channels:
            channel.sampler += offset
            clip.channels.append(channel)
    del gltf.animations[first_new + 1 :]
    return write_glb(gltf, path), reports


__all__ = ["asset_glb", "primitive_positions", "source_glb", "write_animated_source"]
