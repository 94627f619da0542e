"""glTF containers: the one GLB writer, reading a GLB's JSON, and packing a .gltf with its files into one GLB.

Loading packs every .gltf first and reads the packed bytes as a GLB, so resolving external files (URL-encoded
names, paths outside the folder, data URIs) does not depend on the trimesh version, and the write-back starts
from the same self-contained bytes.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import struct
import urllib.parse
from pathlib import Path

from ..checkpoint import atomic_write_bytes

_WHITE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"
)


def glb_bytes(document: dict, blob: bytes) -> bytes:
    """A GLB container: JSON chunk (space padded) + BIN chunk (zero padded), both 4-byte aligned."""
    text = json.dumps(document, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    blob = blob + b"\0" * (-len(blob) % 4)
    chunks = struct.pack("<I4s", len(text), b"JSON") + text
    if blob:
        chunks += struct.pack("<I4s", len(blob), b"BIN\0") + blob
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def write_glb(gltf, path: str | Path) -> Path:
    """A pygltflib GLTF2 (one buffer, held in its binary blob) as a GLB file, written atomically."""
    import pygltflib

    if any(b.uri for b in gltf.buffers):
        gltf.convert_buffers(pygltflib.BufferFormat.BINARYBLOB)
    if len(gltf.buffers) > 1:
        raise ValueError(f"Expected one binary buffer, the document has {len(gltf.buffers)}; merge them first")
    document = json.loads(gltf.gltf_to_json())
    return atomic_write_bytes(path, glb_bytes(document, gltf.binary_blob() or b""))


def _uri_bytes(uri: str, folder: Path) -> bytes | None:
    if uri.startswith("data:"):
        return base64.b64decode(uri.split(",", 1)[1])
    path = folder / urllib.parse.unquote(uri)
    return path.read_bytes() if path.is_file() else None


def missing_images(document: dict, folder: Path) -> list[str]:
    """Image files a glTF document names that are not there (URL-decoded names)."""
    uris = [i["uri"] for i in document.get("images", []) if "uri" in i and not i["uri"].startswith("data:")]
    return [urllib.parse.unquote(u) for u in uris if _uri_bytes(u, folder) is None]


def pack_gltf(path: Path) -> bytes:
    """A .gltf with external or data-URI buffers and images as one GLB with a single binary buffer.

    Missing image files (accepted with allow_missing_textures) become a 1x1 white PNG, so the faces show their
    material colour, as in the fit. Raises ValueError for invalid JSON or missing buffers.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path.name} is not a glTF JSON file ({error}); export it again as GLB or glTF 2.0."
        ) from error
    blob = bytearray()
    offsets = []
    for buffer in document.get("buffers", []):
        data = _uri_bytes(buffer["uri"], path.parent) if "uri" in buffer else None
        if data is None:
            raise ValueError(f"{path.name}: buffer {buffer.get('uri')!r} is missing; copy it beside the .gltf file.")
        blob += b"\0" * (-len(blob) % 4)
        offsets.append(len(blob))
        blob += data[: buffer["byteLength"]]
    views = document.get("bufferViews", [])
    for view in views:
        view["byteOffset"] = view.get("byteOffset", 0) + offsets[view["buffer"]]
        view["buffer"] = 0
    for image in document.get("images", []):
        if "uri" not in image:
            continue
        uri = image.pop("uri")
        data = _uri_bytes(uri, path.parent)
        if data is None:
            data, image["mimeType"] = _WHITE_PNG, "image/png"
        else:
            image.setdefault("mimeType", _image_mime(uri, data))
        blob += b"\0" * (-len(blob) % 4)
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data)})
        image["bufferView"] = len(views) - 1
        blob += data
    if views:
        document["bufferViews"] = views
        document["buffers"] = [{"byteLength": len(blob)}]
    return glb_bytes(document, bytes(blob))


def _image_mime(uri: str, data: bytes) -> str:
    if uri.startswith("data:"):
        return uri[5:].split(";", 1)[0]
    if data.startswith(b"\x89PNG"):
        return "image/png"
    return mimetypes.guess_type(uri)[0] or "image/jpeg"


def glb_json(data: bytes) -> dict:
    """The JSON chunk of GLB bytes (ValueError when the bytes are not a GLB)."""
    try:
        magic, _, _ = struct.unpack_from("<4sII", data, 0)
        length, kind = struct.unpack_from("<I4s", data, 12)
        if magic != b"glTF" or kind != b"JSON":
            raise ValueError("no glTF binary header")
        return json.loads(data[20 : 20 + length].decode("utf-8"))
    except (struct.error, UnicodeDecodeError) as error:
        raise ValueError(str(error)) from error


__all__ = ["glb_bytes", "glb_json", "missing_images", "pack_gltf", "write_glb"]
