"""Every file the library writes goes through the atomic writer: an interrupt mid-write leaves no file (issue 16).

The rename onto the target is made to fail with KeyboardInterrupt (what Ctrl+C raises): a writer that went
through `atomic_path` leaves neither the target nor a temporary file; one that wrote the target in place
would leave it (possibly truncated), and `--resume` would then trust it because it exists.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch

from a124_core import checkpoint
from a124_core.checkpoint import atomic_path, atomic_write_json, atomic_write_text, save_checkpoint


@pytest.fixture
def interrupted_rename(monkeypatch):
    def fail(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.os, "replace", fail)


def _mesh():
    from a124_core.outputs.mesh import Mesh

    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    normals = np.tile(np.array([[0, 0, 1]], dtype=np.float32), (3, 1))
    return Mesh(vertices, np.array([[0, 1, 2]]), normals, np.full((3, 3), 0.5, dtype=np.float32))


def _writers():
    from a124_core.outputs.evaluate_benchmark import write_tables
    from a124_core.outputs.export import write_video
    from a124_core.outputs.mesh import write_animated_glb, write_obj
    from a124_core.outputs.metrics import ClipScores
    from a124_core.textual_inversion.trainer import save_embedding

    scores = {"panda": ClipScores(1.0, 0.3, 0.8, 0.9)}
    return {
        "checkpoint": lambda d: save_checkpoint(d / "c.safetensors", {"x": torch.ones(3)}, {"step": 1}),
        "embedding": lambda d: save_embedding(d / "_panda_.safetensors", "_panda_", torch.randn(1, 32)),
        "json": lambda d: atomic_write_json(d / "summary.json", {"a": 1}),
        "obj": lambda d: write_obj(_mesh(), d / "m.obj"),
        "glb": lambda d: write_animated_glb([_mesh(), _mesh()], d / "m.glb"),
        "tables": lambda d: write_tables(scores, {"panda": "a panda"}, d, "ours"),
        "mp4": lambda d: write_video(torch.rand(2, 16, 16, 3), d / "v.mp4"),
        "webp": lambda d: write_video(torch.rand(2, 16, 16, 3), d / "v.webp"),
    }


@pytest.mark.parametrize("name", list(_writers()))
def test_interrupted_write_leaves_nothing(tmp_path, interrupted_rename, name):
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(KeyboardInterrupt):
        _writers()[name](folder)
    assert list(folder.iterdir()) == [], f"{name} wrote outside the atomic writer"


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "a" / "f.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and [p.name for p in target.parent.iterdir()] == ["f.txt"]
    with atomic_path(target, suffix=".txt") as tmp:
        assert tmp.suffix == ".txt" and tmp.parent == target.parent
        tmp.write_text("new")
    assert target.read_text() == "new" and [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # mkstemp alone gives 0o600 (unreadable to a web server)
