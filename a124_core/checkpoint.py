"""Atomic writes: checkpoints (one safetensors file whose header carries JSON metadata, SPEC 10: never pickle)
and every other file the project writes (JSON, text, images, embeddings).

Writes go to a temporary file in the same folder and are renamed into place, so an interrupt or a crash
mid-write never leaves a truncated file behind (a later `--resume` would otherwise trust it because it exists).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .weight_files import check_safetensors

METADATA_KEY = "a124"
#: What to do about a corrupt file this project wrote itself.
REWRITE_HINT = "delete it and rerun the step that wrote it"


class WriteFailed(OSError):
    """A file could not be written (no space left, no permission, a folder where a file should go). Its message is
    one line naming the file and the reason; what was written before it is intact."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"Could not write {path}: {reason}")
        self.path, self.reason = path, reason


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _file_mode(path: Path) -> None:
    """The permissions a new file gets under the umask (mkstemp and safetensors 0.8 leave 0600)."""
    os.chmod(path, 0o666 & ~_umask())


#: errno values of a write that failed for want of room or rights (anything else is a bug to show in full).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO})


def write_failure(error: BaseException) -> str | None:
    """One line for a write that failed for want of room or rights, from any writer (None for anything else)."""
    if isinstance(error, WriteFailed):
        return str(error)
    reason = _write_error(error)
    if reason is None or (isinstance(error, OSError) and error.errno not in WRITE_ERRNOS):
        return None
    where = getattr(error, "filename", None)
    return f"Could not write {where}: {reason}" if where else f"A write failed: {reason}"


def _write_error(error: BaseException) -> str | None:
    """The reason of an I/O failure (None for any other error, which propagates unchanged)."""
    if isinstance(error, (FileExistsError, NotADirectoryError)) and error.filename:
        return f"{error.filename} is a file where a folder is needed"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    if isinstance(error, SafetensorError):  # safetensors wraps the OS error's text
        found = _SAFETENSORS_IO.search(str(error))
        return next(g for g in found.groups() if g) if found else None
    return None


#: The OS error inside a SafetensorError: 0.8 says 'I/O error: <text> (os error 28)', earlier 'IoError(... message:
#: "<text>" })'.
_SAFETENSORS_IO = re.compile(r'I/O error: (.+?)(?: \(os error \d+\))?$|IoError\(.*message: "([^"]+)"')


@contextlib.contextmanager
def naming_failed_writes(path: str | Path) -> Iterator[None]:
    """A write in the block that fails (no space, no rights, a file where a folder goes; from our writer or a
    library's, e.g. `save_pretrained`) becomes `WriteFailed` naming `path`; any other error passes unchanged."""
    try:
        yield
    except (OSError, SafetensorError) as error:
        reason = _write_error(error)
        if reason is None or isinstance(error, WriteFailed):
            raise
        raise WriteFailed(Path(path), reason) from error


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; renamed onto `path` only when the block succeeds.

    The temporary file gets `suffix` (writers that pick a format from it need e.g. ".png") and the normal
    permissions of a new file (mkstemp alone would leave it readable by its owner only). On an exception
    (KeyboardInterrupt included) it is deleted and `path` keeps its old content.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        with naming_failed_writes(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=path.name + ".", suffix=suffix, dir=path.parent)
            os.close(fd)
            tmp = Path(name)
            _file_mode(tmp)
            yield tmp
            os.replace(tmp, path)
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any, **dumps_kwargs: Any) -> Path:
    """Write `data` as JSON (indent 2 unless given; `default=str` for paths and the like) atomically."""
    dumps_kwargs.setdefault("indent", 2)
    dumps_kwargs.setdefault("default", str)
    return atomic_write_text(path, json.dumps(data, **dumps_kwargs) + "\n")


def save_safetensors(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> Path:
    """A plain safetensors file (contiguous CPU copies of `tensors`), written atomically; returns the path."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata=metadata)
        _file_mode(tmp)  # safetensors 0.8 writes a new file with mode 0600
    return Path(path)


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Save tensors + JSON-serialisable metadata atomically; returns the final path."""
    return save_safetensors(path, tensors, {METADATA_KEY: json.dumps(metadata, sort_keys=True)})


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Load (tensors, metadata) written by `save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist; pass the .safetensors file a stage wrote.")
    check_safetensors(path, fix=REWRITE_HINT)
    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt", device=str(device)) as f:
        header = f.metadata() or {}
        for key in f.keys():  # noqa: SIM118 (safe_open is not a dict)
            tensors[key] = f.get_tensor(key)
    if METADATA_KEY not in header:
        raise ValueError(
            f"{path} is a safetensors file but not an Animate124 checkpoint (no '{METADATA_KEY}' metadata)."
        )
    return tensors, json.loads(header[METADATA_KEY])


def rng_state() -> dict[str, torch.Tensor]:
    """CPU (and CUDA, when present) RNG states as tensors, so a resumed run draws the same numbers."""
    state = {"rng/cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            state[f"rng/cuda{i}"] = s
    return state


def set_rng_state(tensors: dict[str, torch.Tensor]) -> None:
    """Restore states saved by `rng_state` (missing CUDA states are ignored on CPU-only machines)."""
    if "rng/cpu" in tensors:
        torch.set_rng_state(tensors["rng/cpu"].to(torch.uint8))
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda")]
        if cuda:
            torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in cuda])


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str = "optim") -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors (for safetensors) and JSON metadata."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    meta_state: dict[str, dict[str, Any]] = {}
    for pid, pstate in state["state"].items():
        meta_state[str(pid)] = {}
        for name, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}/{pid}/{name}"] = value
            else:
                meta_state[str(pid)][name] = value
    return tensors, {"param_groups": state["param_groups"], "state": meta_state}


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict, prefix: str = "optim"
) -> None:
    """Inverse of `optimizer_tensors`."""
    state: dict[int, dict[str, Any]] = {int(pid): dict(values) for pid, values in meta["state"].items()}
    for key, value in tensors.items():
        if key.startswith(prefix + "/"):
            _, pid, name = key.split("/", 2)
            state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
