"""A mesh of known shape and motion for the mesh tests and the animate-mesh oracle (issue 15).

A body box with two arm cylinders, in file units (metres, not centred: loading must normalise it). The box has
4 vertices per side and the cylinders a duplicated seam column, like exported game meshes (UV seams split
vertices). Every vertex has a UV into a 16 x 16 texture of solid colour blocks and a vertex colour.
`articulated_positions(t)` gives the ground-truth positions of every vertex while both arms rotate about their
shoulder joints (rigid parts: edge lengths constant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CENTRE = np.array([0.4, 1.1, -0.3])  # where the model stands in the file
BODY_HALF = np.array([0.25, 0.35, 0.15])
ARM_RADIUS = 0.08
ARM_LENGTH = 0.45
ARM_INSET = 0.05  # arms start inside the body: overlapping closed parts
SHOULDER_HEIGHT = 0.2
ARM_RINGS = 4  # rings along each arm (3 segments), so edges along the arm exist besides the caps
ARM_SECTIONS = 12
RAISE_DEG = 60.0  # each arm rotates up by this much over t in [0, 1]

# Texture: 16 x 16, four 8 x 8 blocks; body sides span the top row of blocks, arms the bottom row.
TEXTURE_BLOCKS = np.array(
    [[[220, 40, 40], [40, 60, 220]], [[40, 180, 60], [230, 200, 40]]], dtype=np.uint8
)  # [block row, block col, rgb], row 0 = top of the image


@dataclass
class LimbMesh:
    """The model as arrays in file coordinates (vertex order = the order every writer below keeps)."""

    vertices: np.ndarray  # [V, 3] float64
    faces: np.ndarray  # [F, 3] int64, counter-clockwise seen from outside
    uv: np.ndarray  # [V, 2] v up (OBJ convention)
    vertex_colors: np.ndarray  # [V, 3] float in [0, 1]
    part: np.ndarray  # [V] 0 body, 1 left arm (-x), 2 right arm (+x)
    texture: np.ndarray  # [16, 16, 3] uint8, row 0 = top


def texture_image() -> np.ndarray:
    return np.kron(TEXTURE_BLOCKS.transpose(2, 0, 1), np.ones((8, 8), np.uint8)).transpose(1, 2, 0).copy()


def _box() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """24 vertices (4 per side), 12 triangles; UVs inside the top-left block (texture rows 0-7)."""
    vertices, faces, uvs = [], [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u_axis, v_axis = [a for a in range(3) if a != axis]
            corners = []
            for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = np.zeros(3)
                p[axis], p[u_axis], p[v_axis] = sign, du, dv
                corners.append(p * BODY_HALF)
            base = len(vertices)
            vertices += corners
            faces += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
            uvs += [
                [0.05 + 0.9 * (du + 1) / 2, 0.55 + 0.4 * (dv + 1) / 2]
                for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1))
            ]
    return np.array(vertices), np.array(faces), np.array(uvs)


def _arm(side: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed cylinder along side * x from the shoulder joint inward by ARM_INSET; UVs in the bottom blocks."""
    xs = side * (BODY_HALF[0] - ARM_INSET + np.linspace(0, ARM_LENGTH, ARM_RINGS))
    angles = np.linspace(0, 2 * math.pi, ARM_SECTIONS + 1)  # last column duplicates the first (UV seam)
    vertices, uvs = [], []
    for i, x in enumerate(xs):
        for j, a in enumerate(angles):
            vertices.append([x, SHOULDER_HEIGHT + ARM_RADIUS * math.cos(a), ARM_RADIUS * math.sin(a)])
            uvs.append([0.05 + 0.9 * j / ARM_SECTIONS, 0.05 + 0.4 * i / (ARM_RINGS - 1)])
    cols = ARM_SECTIONS + 1
    faces = []
    for i in range(ARM_RINGS - 1):
        for j in range(ARM_SECTIONS):
            a, b, c, d = i * cols + j, i * cols + j + 1, (i + 1) * cols + j + 1, (i + 1) * cols + j
            faces += [[a, b, c], [a, c, d]]
    for ring, x in ((0, xs[0]), (ARM_RINGS - 1, xs[-1])):  # caps: one centre vertex each
        centre = len(vertices)
        vertices.append([x, SHOULDER_HEIGHT, 0.0])
        uvs.append([0.5, 0.25])
        faces += [[centre, ring * cols + j + 1, ring * cols + j] for j in range(ARM_SECTIONS)]
    return np.array(vertices), np.array(faces), np.array(uvs)


def _orient_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Counter-clockwise seen from outside, for a convex part: normals point away from the part's centre."""
    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    inward = ((tri.mean(1) - vertices.mean(0)) * normal).sum(1) < 0
    return np.where(inward[:, None], faces[:, ::-1], faces)


def build_test_mesh() -> LimbMesh:
    parts = [_box(), _arm(-1.0), _arm(1.0)]
    vertices, faces, uvs, labels = [], [], [], []
    for label, (v, f, uv) in enumerate(parts):
        faces.append(_orient_outward(v, f) + sum(len(x) for x in vertices))
        vertices.append(v)
        uvs.append(uv)
        labels.append(np.full(len(v), label))
    v = np.concatenate(vertices)
    uv = np.concatenate(uvs)
    part = np.concatenate(labels)
    height = (v[:, 1] - v[:, 1].min()) / np.ptp(v[:, 1])
    colours = np.stack([0.3 + 0.6 * height, np.where(part == 0, 0.8, 0.3), np.where(part == 2, 0.9, 0.2)], 1)
    return LimbMesh(v + CENTRE, np.concatenate(faces), uv, colours, part, texture_image())


def joint(side: float) -> np.ndarray:
    """Shoulder joint of the arm on side -1 (left, -x) or +1 (right), file coordinates."""
    return CENTRE + np.array([side * BODY_HALF[0], SHOULDER_HEIGHT, 0.0])


def articulated_positions(mesh: LimbMesh, t: float) -> np.ndarray:
    """[V, 3] vertex positions at time t in [0, 1]: each arm rotated up by RAISE_DEG * t about its joint (z axis)."""
    out = mesh.vertices.copy()
    for label, side in ((1, -1.0), (2, 1.0)):
        angle = math.radians(RAISE_DEG * t) * side  # right arm: counter-clockwise about +z raises +x tip
        c, s = math.cos(angle), math.sin(angle)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        sel = mesh.part == label
        out[sel] = (mesh.vertices[sel] - joint(side)) @ rot.T + joint(side)
    return out


def _trimesh(mesh: LimbMesh, colours: str):
    import trimesh
    from PIL import Image

    if colours == "texture":
        material = trimesh.visual.material.PBRMaterial(
            baseColorTexture=Image.fromarray(mesh.texture), baseColorFactor=[255, 255, 255, 255], name="body"
        )
        visual = trimesh.visual.TextureVisuals(uv=mesh.uv, material=material)
    else:
        rgba = np.concatenate([mesh.vertex_colors, np.ones((len(mesh.vertices), 1))], 1)
        visual = trimesh.visual.ColorVisuals(vertex_colors=np.round(rgba * 255).astype(np.uint8))
    return trimesh.Trimesh(mesh.vertices, mesh.faces, visual=visual, process=False)


def write_glb(mesh: LimbMesh, path: Path, colours: str = "texture") -> Path:
    """One mesh, one primitive; colours 'texture' (UV + image) or 'vertex' (COLOR_0, stored linear)."""
    import trimesh

    if colours == "vertex":  # glTF COLOR_0 is linear: store linear so the display colour is mesh.vertex_colors
        from a124_core.meshes.asset import srgb_to_linear

        mesh = LimbMesh(**{**mesh.__dict__, "vertex_colors": srgb_to_linear(mesh.vertex_colors)})
    path.write_bytes(trimesh.Scene([_trimesh(mesh, colours)]).export(file_type="glb"))
    return path


def write_obj(mesh: LimbMesh, path: Path) -> Path:
    """OBJ + MTL + PNG texture beside it (the OBJ writer splits nothing: v and vt indices are the same)."""
    from trimesh.exchange.obj import export_obj

    text, files = export_obj(
        _trimesh(mesh, "texture"), include_texture=True, return_texture=True, mtl_name=path.stem + ".mtl"
    )
    path.write_text(text)
    for name, data in files.items():
        (path.parent / name).write_bytes(data)
    return path


def write_ply(mesh: LimbMesh, path: Path) -> Path:
    """Binary PLY with uint8 vertex colours (display space)."""
    path.write_bytes(_trimesh(mesh, "vertex").export(file_type="ply"))
    return path
