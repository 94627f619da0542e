"""Writing the tiny models' folders: built once into a temporary sibling then renamed into place, JSON configs.

Shared by the tiny priors of `tiny.py` and the tiny MVDream of `tiny_mvdream.py` (below both).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

SD_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Build into a temporary sibling and rename into place: idempotent, never half-written."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        out = tmp / target.name
        build(out)
        os.replace(out, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def model_index(folder: Path, cls: str, components: dict[str, list]) -> None:
    write_json(folder / "model_index.json", {"_class_name": cls, "_diffusers_version": "0.42.1", **components})


__all__ = ["SD_SCHEDULER", "build_once", "model_index", "write_json"]
