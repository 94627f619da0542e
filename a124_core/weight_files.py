"""Cheap integrity checks of weight files before any library reads them.

A truncated download or a zero-filled file makes diffusers/transformers fail deep inside their loaders with a
long traceback that never names the file. These checks read only the structure a loader relies on (the
safetensors header and the data size it declares; a torch zip archive's central directory) and raise one
line that names the file and the fix. They never read tensor data, so checking a 4 GB UNet costs one small read.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

#: Weight file suffixes the loaders of this project open (safetensors first; `.bin` / `.pt` only with
#: `torch.load(weights_only=True)`).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")

#: A header larger than this is not a real safetensors header (the safetensors library refuses > 100 MB too).
_MAX_HEADER_BYTES = 100_000_000

DOWNLOAD_AGAIN = "download it again"


class CorruptWeightsError(ValueError):
    """A weight file is truncated, zero-filled or not the format its name says."""


def _fail(path: Path, kind: str, reason: str, fix: str) -> CorruptWeightsError:
    return CorruptWeightsError(f"{path} is not a valid {kind} file ({reason}); it is truncated or corrupted: {fix}.")


def check_safetensors(path: str | Path, fix: str = DOWNLOAD_AGAIN) -> dict:
    """Validate a safetensors file's header against its size; returns the parsed header.

    Layout: 8-byte little-endian header length N, N bytes of JSON, then the tensor bytes. Every tensor's
    `data_offsets` must lie inside the data section, and the section must end where the last tensor ends.
    """
    path = Path(path)
    size = path.stat().st_size
    kind = "safetensors"
    if size < 8:
        raise _fail(path, kind, f"{size} bytes, shorter than the 8-byte header length", fix)
    with path.open("rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n == 0 or n > _MAX_HEADER_BYTES:
            raise _fail(path, kind, f"header length field reads {n}", fix)
        if 8 + n > size:
            raise _fail(path, kind, f"the header needs {8 + n} bytes but the file has {size}", fix)
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _fail(path, kind, f"header is not JSON: {err.__class__.__name__}", fix) from None
    if not isinstance(header, dict):
        raise _fail(path, kind, "header is not a JSON object", fix)
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise _fail(path, kind, f"tensor {name!r} has no valid data_offsets", fix)
        if not 0 <= offsets[0] <= offsets[1]:
            raise _fail(path, kind, f"tensor {name!r} has data_offsets {offsets}", fix)
        end = max(end, offsets[1])
    data = size - 8 - n
    if end != data:
        raise _fail(path, kind, f"the header declares {end} bytes of tensor data, the file holds {data}", fix)
    return header


def check_torch_archive(path: str | Path, fix: str = DOWNLOAD_AGAIN) -> None:
    """Validate a `torch.save` file: a zip archive whose central directory (at the end) is readable.

    Pre-1.6 files (a bare pickle stream) are accepted when they start with a pickle protocol marker; their
    truncation cannot be seen without reading them whole.
    """
    path = Path(path)
    kind = "PyTorch weights"
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(2)
    if head[:1] == b"\x80" and size > 2:  # legacy pickle stream (protocol 2+)
        return
    if head != b"PK":
        raise _fail(path, kind, f"starts with {head!r}, neither a zip archive nor a pickle", fix)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise _fail(path, kind, f"zip archive unreadable: {err}", fix) from None
    if not any(name.endswith("data.pkl") for name in names):
        raise _fail(path, kind, "zip archive without data.pkl", fix)


def check_weight_file(path: str | Path, fix: str = DOWNLOAD_AGAIN) -> Path:
    """Check one weight file by its suffix (`.safetensors`, else a torch archive); returns the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Weight file {path} does not exist; {fix}.")
    if path.suffix == ".safetensors":
        check_safetensors(path, fix)
    else:
        check_torch_archive(path, fix)
    return path


def check_weight_files(folder: str | Path, fix: str = DOWNLOAD_AGAIN) -> list[Path]:
    """Check every weight file below `folder` (recursively; a single file is checked alone). Returns them."""
    folder = Path(folder)
    if folder.is_file():
        return [check_weight_file(folder, fix)]
    files = sorted(p for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    for path in files:
        check_weight_file(path, fix)
    return files
