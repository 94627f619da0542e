"""glTF 2.0 binary accessors: append numpy arrays to a GLTF2's binary chunk, and read accessors back.

`GlbBlob` keeps every array 4-byte aligned in buffer 0 (vertex attributes padded to 4-byte elements, as the
spec asks); `read_accessor` undoes it, dense or sparse, normalized integers mapped as the spec says.
"""

from __future__ import annotations

import numpy as np

COMPONENT_TYPES = {  # numpy dtype -> glTF componentType
    np.dtype(np.int8): 5120,
    np.dtype(np.uint8): 5121,
    np.dtype(np.int16): 5122,
    np.dtype(np.uint16): 5123,
    np.dtype(np.uint32): 5125,
    np.dtype(np.float32): 5126,
}
_DTYPES = {v: k for k, v in COMPONENT_TYPES.items()}
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
            componentType=COMPONENT_TYPES[np.dtype(component)],
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


__all__ = ["COMPONENT_TYPES", "GlbBlob", "read_accessor"]
