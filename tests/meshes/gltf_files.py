"""glTF files written byte by byte (no trimesh), so the loader's vertex order is checked against known arrays."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from a124_core.gltf.container import glb_bytes
from a124_core.meshes.writeback import _Blob


def _quaternion_y(deg: float) -> list[float]:
    half = math.radians(deg) / 2
    return [0.0, math.sin(half), 0.0, math.cos(half)]  # glTF order x, y, z, w


def _rotation_y(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _tetra(offset: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vertices = rng.normal(size=(6, 3)).astype(np.float32) * 0.3 + offset
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2], [3, 4, 5]], np.uint32)
    return vertices, faces


def multi_primitive_document(extra_node: dict | None = None, primitive_extra: dict | None = None):
    """Two meshes: mesh 0 has a triangle primitive, a POINTS primitive and a second triangle primitive; mesh 1 one
    triangle primitive. Node 0 (translate + rotate 30 deg about y + scale 2) draws mesh 0; its child node 1
    (translate) draws mesh 1. Returns (document, blob, expected) with expected = [(mesh, primitive, local vertices,
    faces, world-from-local 4x4)] in file order of the triangle primitives."""
    blob = _Blob()
    meshes, expected = [{"primitives": []}, {"primitives": []}], []
    node0 = np.eye(4)
    node0[:3, :3] = _rotation_y(30.0) * 2.0
    node0[:3, 3] = [0.5, -0.25, 1.0]
    node1 = np.eye(4)
    node1[:3, 3] = [0.0, 0.3, -0.2]
    world = {0: node0, 1: node0 @ node1}
    for mesh, prim, mode, seed in ((0, 0, 4, 1), (0, 1, 0, 2), (0, 2, 4, 3), (1, 0, 4, 4)):
        vertices, faces = _tetra(0.1 * seed, seed)
        entry = {"attributes": {"POSITION": blob.accessor(vertices, "VEC3", 34962, minmax=True)}, "mode": mode}
        if mode == 4:
            entry["indices"] = blob.accessor(faces.reshape(-1), "SCALAR", 34963)
            expected.append((mesh, prim, vertices, faces.astype(np.int64), world[mesh]))
        entry.update(primitive_extra or {})
        meshes[mesh]["primitives"].append(entry)
    nodes = [
        {
            "mesh": 0,
            "translation": [0.5, -0.25, 1.0],
            "rotation": _quaternion_y(30.0),
            "scale": [2.0] * 3,
            "children": [1],
        },
        {"mesh": 1, "translation": [0.0, 0.3, -0.2]},
    ]
    if extra_node is not None:
        nodes.append(extra_node)
    document = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": [0] + ([2] if extra_node is not None else [])}],
        "nodes": nodes,
        "meshes": meshes,
        "accessors": blob.accessors,
        "bufferViews": blob.views,
        "buffers": [{"byteLength": len(blob.data)}],
    }
    return document, bytes(blob.data), expected


def write_multi_primitive_glb(path: Path, **kwargs) -> tuple[Path, list]:
    document, blob, expected = multi_primitive_document(**kwargs)
    path.write_bytes(glb_bytes(document, blob))
    return path, expected
