"""Read a user's mesh (GLB, glTF, OBJ + MTL, PLY, STL, or ComfyUI's MESH tensors) into a `MeshAsset`.

trimesh reads every format with `process=False`, which keeps each primitive's vertices exactly as stored (no
merging, no reordering; tests/meshes prove it on files written independently). For glTF the asset's vertex
ranges map one to one onto the file's primitives in accessor order (`PrimitiveSegment`), so the animation can
be attached to the user's own file as morph targets. Every rejection is one ValueError that names the file,
the problem and the fix, raised before anything is trained.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..gltf.container import glb_json, missing_images, pack_gltf
from .asset import Material, MeshAsset, MeshSource, PrimitiveSegment, linear_to_srgb
from .checks import MeshCheckConfig, check_mesh

EXTENSIONS = {".glb": "glb", ".gltf": "gltf", ".obj": "obj", ".ply": "ply", ".stl": "stl"}
_GLTF_TRIANGLES, _GLTF_STRIP = 4, 5
_GLTF_READ_BY_TRIMESH = (0, 1, _GLTF_TRIANGLES, _GLTF_STRIP)  # points, lines, triangles, strips
_COMPRESSION = ("KHR_draco_mesh_compression", "EXT_meshopt_compression", "KHR_meshopt_compression")


@dataclass(frozen=True)
class MeshLoadConfig:
    """What loading accepts."""

    checks: MeshCheckConfig = MeshCheckConfig()
    """Face limit and the other input checks."""
    allow_missing_textures: bool = False
    """A texture file named by the mesh but absent: False refuses the mesh; True warns and colours those faces
    with the material's base colour (or vertex colours) instead."""
    default_color: float = 0.8
    """Grey used for faces with no material, texture or vertex colour (white would vanish on the white
    backgrounds of the reference renders)."""


def load_mesh(path: str | Path, config: MeshLoadConfig = MeshLoadConfig()) -> MeshAsset:
    """Read a mesh file; y-up, +z front (glTF's convention, assumed for OBJ/PLY/STL too)."""
    import trimesh

    path = Path(path)
    fmt = _format_of(path)
    if not path.is_file():
        raise FileNotFoundError(f"Mesh file {path} does not exist; pass a .glb, .gltf, .obj, .ply or .stl file.")
    notes: list[str] = []
    missing = _missing_textures(path, fmt)
    if missing and not config.allow_missing_textures:
        raise ValueError(
            f"{path.name} names texture file(s) {missing} that are not next to it; copy them beside the mesh, or "
            "allow missing textures to colour those faces with the material colour instead."
        )
    if missing:
        notes.append(f"texture file(s) {missing} are missing: their faces use the material / vertex colour")
    data = path.read_bytes() if fmt == "glb" else pack_gltf(path) if fmt == "gltf" else None
    header = _gltf_header(path, data) if data is not None else None
    if header is not None:
        _check_gltf_header(path, header)
    try:
        if data is not None:
            scene = trimesh.load(io.BytesIO(data), file_type="glb", process=False, force="scene")
        else:
            scene = trimesh.load(str(path), file_type=fmt, process=False, force="scene")
    except Exception as error:  # trimesh raises many types for malformed files
        raise ValueError(
            f"{path.name} is not a readable {fmt.upper()} mesh ({type(error).__name__}: {error}); export it again "
            "from your 3D tool as GLB, glTF, OBJ, PLY or STL."
        ) from error
    parts = _triangle_parts(scene, header, path, notes)
    asset = _assemble(parts, MeshSource(fmt, path, data), fmt in ("glb", "gltf"), config, notes)
    return _finish(asset, config)


def mesh_from_tensors(vertices, faces, config: MeshLoadConfig = MeshLoadConfig()) -> MeshAsset:
    """ComfyUI's MESH (`.vertices` [B, V, 3], `.faces` [B, F, 3], one size for the whole batch): item 0 only.

    MESH carries no colour (Hunyuan3D's decoder makes none), so the surface gets `default_color`; coordinates
    are taken as y-up like the GLB ComfyUI's Save GLB writes from them.
    """
    v = np.asarray(vertices.detach().cpu() if hasattr(vertices, "detach") else vertices, dtype=np.float64)
    f = np.asarray(faces.detach().cpu() if hasattr(faces, "detach") else faces)
    if v.ndim == 2:
        v = v[None]
    if f.ndim == 2:
        f = f[None]
    if v.ndim != 3 or v.shape[-1] != 3 or v.shape[0] < 1:
        raise ValueError(f"MESH vertices must be [B, V, 3], got shape {tuple(v.shape)}; pass a MESH from a 3D node.")
    if f.ndim != 3 or (f.shape[-1] != 3 and f.shape[1] > 0):
        raise ValueError(f"MESH faces must be [B, F, 3] triangles, got shape {tuple(f.shape)}.")
    notes = [f"the MESH batch holds {v.shape[0]} meshes; only the first is animated"] if v.shape[0] > 1 else []
    if f.size and not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"MESH faces must be integer vertex indices, got dtype {f.dtype}.")
    part = _Part(v[0].astype(np.float32), f[0].reshape(-1, 3).astype(np.int64), None, None, None, (0, 0), None)
    asset = _assemble([part], MeshSource("tensors"), False, config, notes)
    return _finish(asset, config)


@dataclass
class _Part:
    """One triangle primitive of the file, in world coordinates."""

    vertices: np.ndarray  # [n, 3] float32
    faces: np.ndarray  # [m, 3] int64, local to the part
    uv: np.ndarray | None  # [n, 2]
    vertex_colors: np.ndarray | None  # [n, 3] as stored (linear for glTF)
    material: object | None  # trimesh material
    index: tuple[int, int]  # (glTF mesh, primitive) or (geometry order, 0)
    matrix: np.ndarray | None  # [4, 4] world-from-local


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if suffix == ".fbx":
        raise ValueError(
            f"{path.name}: FBX cannot be read without Autodesk's SDK; export the model as GLB (Blender: File > "
            "Export > glTF 2.0) and pass that."
        )
    raise ValueError(
        f"{path.name}: unsupported mesh extension {suffix or '(none)'!r}; pass one of {sorted(EXTENSIONS)}."
    )


def _gltf_header(path: Path, data: bytes) -> dict:
    try:
        return glb_json(data)
    except ValueError as error:
        raise ValueError(
            f"{path.name} is not a glTF binary file ({error}); export the model again as GLB or glTF 2.0."
        ) from error


def _check_gltf_header(path: Path, header: dict) -> None:
    used = set(header.get("extensionsRequired", []))  # only "used" ones come with uncompressed fallback data
    compressed = sorted(used.intersection(_COMPRESSION))
    if compressed:
        raise ValueError(
            f"{path.name} stores its geometry compressed ({', '.join(compressed)}), which cannot be read or animated "
            "here; export it again without mesh compression."
        )
    for i, node in enumerate(header.get("nodes", [])):
        if "skin" in node:
            raise ValueError(
                f"{path.name}: node {node.get('name', i)!r} is skinned (rigged); animate a rigged model through its "
                "rig, or remove the armature and export the static mesh."
            )
    for i, mesh in enumerate(header.get("meshes", [])):
        if any("targets" in p for p in mesh.get("primitives", [])):
            raise ValueError(
                f"{path.name}: mesh {mesh.get('name', i)!r} already has morph targets; apply or delete its shape keys "
                "and export it again."
            )


def _gltf_primitive_order(header: dict) -> list[tuple[int, int, int, int]]:
    """(mesh, primitive, mode, vertex count) of every primitive trimesh turns into a geometry, in its order."""
    accessors = header.get("accessors", [])
    order = []
    for m, mesh in enumerate(header.get("meshes", [])):
        for p, prim in enumerate(mesh.get("primitives", [])):
            mode = prim.get("mode", _GLTF_TRIANGLES)
            if mode in _GLTF_READ_BY_TRIMESH:
                position = prim.get("attributes", {}).get("POSITION")
                count = accessors[position]["count"] if position is not None and position < len(accessors) else -1
                order.append((m, p, mode, count))
    return order


def _triangle_parts(scene, header: dict | None, path: Path, notes: list[str]) -> list[_Part]:
    import trimesh

    names = list(scene.geometry)
    order = _gltf_primitive_order(header) if header is not None else [(i, 0, _GLTF_TRIANGLES, -1) for i in names]
    if header is not None and len(order) != len(names):
        raise ValueError(f"{path.name}: trimesh read {len(names)} primitives where the file has {len(order)}.")
    parts, kinds = [], []
    for name, (mesh, prim, _, count) in zip(names, order):
        geometry = scene.geometry[name]
        kinds.append(type(geometry).__name__)
        if not isinstance(geometry, trimesh.Trimesh) or len(geometry.faces) == 0:
            continue
        nodes = scene.graph.geometry_nodes.get(name, [])
        if not nodes:
            continue  # defined in the file but drawn by no node of the scene
        if len(nodes) > 1:
            raise ValueError(
                f"{path.name}: primitive {name!r} is drawn by {len(nodes)} nodes (instancing); morph targets would "
                "move every copy alike. Make the copies single-user (Blender: Object > Relations > Make Single User) "
                "and export again."
            )
        if header is not None and len(geometry.vertices) != count:
            raise ValueError(
                f"{path.name}: primitive {prim} of mesh {mesh} has {count} vertices in the file but "
                f"{len(geometry.vertices)} after reading; the file is inconsistent."
            )
        matrix = np.asarray(scene.graph.get(nodes[0])[0], dtype=np.float64)
        local = np.asarray(geometry.vertices, dtype=np.float64)
        world = local @ matrix[:3, :3].T + matrix[:3, 3]
        index = (mesh, prim) if header is not None else (len(parts), 0)
        faces = np.asarray(geometry.faces, dtype=np.int64)
        parts.append(_Part(world.astype(np.float32), faces, *_colours(geometry, notes), index, matrix))
    if not parts:
        raise ValueError(_no_triangles_message(path, kinds))
    return parts


def _no_triangles_message(path: Path, kinds: list[str]) -> str:
    if "PointCloud" in kinds or "Trimesh" in kinds:
        return (
            f"{path.name} has vertices but no faces (a point cloud); mesh it first (e.g. Poisson reconstruction in "
            "MeshLab or Blender) and pass the triangle mesh."
        )
    if any(k.startswith("Path") for k in kinds):
        return f"{path.name} holds only lines or curves, no triangles; convert them to a mesh and export again."
    return f"{path.name} contains no triangles; it is empty or not a mesh. Pass a GLB, glTF, OBJ, PLY or STL mesh."


def _colours(geometry, notes: list[str]) -> tuple:
    """(uv, vertex colours, material) of a trimesh geometry, colours as stored."""
    visual = geometry.visual
    kind = getattr(visual, "kind", None)
    uv = vertex_colors = material = None
    if kind == "texture":
        material = visual.material
        if getattr(visual, "uv", None) is not None and len(visual.uv) == len(geometry.vertices):
            uv = np.asarray(visual.uv, dtype=np.float32)
        color = visual.vertex_attributes.get("color") if hasattr(visual, "vertex_attributes") else None
        if color is not None and len(color) == len(geometry.vertices):
            vertex_colors = _unit_colours(color)
    elif kind == "vertex":
        vertex_colors = _unit_colours(visual.vertex_colors)
    elif kind == "face":  # glTF has no face colours: average them onto the vertices
        faces = np.asarray(geometry.faces)
        sums = np.zeros((len(geometry.vertices), 3))
        np.add.at(sums, faces.reshape(-1), np.repeat(_unit_colours(visual.face_colors), 3, axis=0))
        uses = np.bincount(faces.reshape(-1), minlength=len(sums))[:, None]
        vertex_colors = (sums / np.maximum(uses, 1)).astype(np.float32)
        notes.append("face colours were averaged onto the vertices (glTF stores colours per vertex)")
    return uv, vertex_colors, material


def _unit_colours(values) -> np.ndarray:
    """Colours of any glTF/PLY storage type -> [N, 3] float32 in [0, 1]."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.integer):
        values = values.astype(np.float32) / np.iinfo(values.dtype).max
    values = np.asarray(values, dtype=np.float32).reshape(len(values), -1)
    if values.shape[1] == 1:
        values = np.repeat(values, 3, 1)
    return np.clip(values[:, :3], 0.0, 1.0)


def _material(material, linear_factors: bool, has_uv: bool, textures: dict[int, np.ndarray]) -> Material:
    """trimesh material -> display-space base colour + texture (OBJ: the texture replaces Kd, as Blender does)."""
    name = str(getattr(material, "name", "") or "")
    image = getattr(material, "baseColorTexture", None)
    factor = getattr(material, "baseColorFactor", None)
    if hasattr(material, "diffuse") and not hasattr(material, "baseColorTexture"):  # OBJ SimpleMaterial
        image, factor = material.image, None if material.image is not None else material.diffuse
    texture = None
    if image is not None and has_uv:
        if id(image) not in textures:  # primitives sharing a material share one array
            textures[id(image)] = np.asarray(image.convert("RGB"), dtype=np.uint8)
        texture = textures[id(image)]
    if factor is None:
        base = np.ones(3, np.float32)
    else:
        base = _unit_colours(np.asarray(factor).reshape(1, -1))[0]
        base = linear_to_srgb(base) if linear_factors else base
    return Material(base.astype(np.float32), texture, name)


def _assemble(parts: list[_Part], source: MeshSource, linear: bool, config: MeshLoadConfig, notes) -> MeshAsset:
    """Concatenate the parts (vertex and face ranges in order; one material each) in display-space colours."""
    vertices, faces, uvs, vcols, segments, materials = [], [], [], [], [], []
    textures: dict[int, np.ndarray] = {}
    start = face_start = grey = 0
    for part in parts:
        n, m = len(part.vertices), len(part.faces)
        if part.material is not None:
            materials.append(_material(part.material, linear, part.uv is not None, textures))
            if part.uv is None and _has_texture(part.material):
                notes.append(f"primitive {part.index} has a texture but no texture coordinates: texture ignored")
        else:
            materials.append(Material(np.ones(3, np.float32)))
        if part.material is None and part.vertex_colors is None:
            materials[-1].base_color = np.full(3, config.default_color, np.float32)
            grey += 1
        vertices.append(part.vertices)
        faces.append(part.faces + start)
        uvs.append(part.uv if part.uv is not None else np.zeros((n, 2), np.float32))
        vc = np.ones((n, 3), np.float32) if part.vertex_colors is None else part.vertex_colors
        vcols.append(linear_to_srgb(vc) if linear and part.vertex_colors is not None else vc)
        matrix = np.eye(4) if part.matrix is None else part.matrix
        segments.append(PrimitiveSegment(part.index[0], part.index[1], start, n, face_start, m, matrix))
        start, face_start = start + n, face_start + m
    if grey:
        which = "it has" if len(parts) == 1 else f"{grey} of its {len(parts)} primitives have"
        notes.append(f"{which} no material or colours: shown grey ({config.default_color})")
    return MeshAsset(
        vertices=np.concatenate(vertices).astype(np.float32),
        faces=np.concatenate(faces),
        face_materials=np.repeat(np.arange(len(parts)), [len(p.faces) for p in parts]),
        materials=materials,
        segments=segments,
        source=source,
        uv=np.concatenate(uvs) if any(p.uv is not None for p in parts) else None,
        vertex_colors=np.concatenate(vcols) if any(p.vertex_colors is not None for p in parts) else None,
        notes=notes,
    )


def _has_texture(material) -> bool:
    return getattr(material, "baseColorTexture", None) is not None or getattr(material, "image", None) is not None


def _finish(asset: MeshAsset, config: MeshLoadConfig) -> MeshAsset:
    asset.notes.extend(check_mesh(asset.vertices, asset.faces, asset.name, config.checks))
    for note in asset.notes:
        warnings.warn(f"{asset.name}: {note}", stacklevel=3)
    return asset


def _missing_textures(path: Path, fmt: str) -> list[str]:
    """Texture files the mesh names that do not exist (trimesh would silently drop them)."""
    folder = path.parent
    if fmt == "gltf":
        try:
            return missing_images(json.loads(path.read_text(encoding="utf-8")), folder)
        except (ValueError, UnicodeDecodeError):
            return []  # not JSON: reading reports it
    if fmt == "obj":
        missing = []
        for mtl in _lines_with(path, "mtllib"):
            mtl_path = folder / mtl
            if not mtl_path.is_file():
                missing.append(mtl)
                continue
            for texture in _lines_with(mtl_path, "map_kd"):
                if not ((mtl_path.parent / texture).is_file() or (mtl_path.parent / texture.split()[-1]).is_file()):
                    missing.append(texture.split()[-1])
        return missing
    if fmt == "ply":
        head = path.read_bytes()[:4096].split(b"end_header")[0].decode("latin-1")
        names = [
            line.split(None, 2)[2].strip()
            for line in head.splitlines()
            if line.lower().startswith("comment texturefile") and len(line.split(None, 2)) == 3
        ]
        return [n for n in names if not (folder / n).is_file()]
    return []


def _lines_with(path: Path, keyword: str) -> list[str]:
    """Values of `keyword value...` lines of a text file (case-insensitive keyword)."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower() == keyword:
            out.append(parts[1].strip())
    return out


__all__ = ["EXTENSIONS", "MeshLoadConfig", "load_mesh", "mesh_from_tensors"]
