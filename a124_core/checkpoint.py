"""Atomic checkpoints: one safetensors file whose header carries JSON metadata (SPEC 10: never pickle).

Writes go to a temporary file in the same folder and are renamed into place, so an interrupt or a crash
mid-write never leaves a truncated checkpoint behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

METADATA_KEY = "a124"


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Save tensors + JSON-serialisable metadata atomically; returns the final path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    header = {METADATA_KEY: json.dumps(metadata, sort_keys=True)}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(flat, tmp, metadata=header)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename (never a partial file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Load (tensors, metadata) written by `save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist; pass the .safetensors file a stage wrote.")
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
