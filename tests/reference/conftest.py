"""Shared fixtures for the reference tests: the example images, tiny depth-model folders, empty rembg folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.paths import EXAMPLES  # noqa: E402

EXAMPLE_NAMES = ("fox-game", "panda-dance", "space-shuttle")


@pytest.fixture(scope="session")
def examples() -> Path:
    if not (EXAMPLES / "panda-dance" / "rgba.png").is_file():
        pytest.fail(f"Example images not found in {EXAMPLES.resolve()} (CI keeps ../shared beside the checkout).")
    return EXAMPLES


@pytest.fixture(scope="session")
def tiny_dpt(tmp_path_factory) -> Path:
    from a124_core.reference.tiny_depth import build_tiny_dpt

    return build_tiny_dpt(tmp_path_factory.mktemp("depth") / "dpt-tiny")


@pytest.fixture(scope="session")
def tiny_depth_anything(tmp_path_factory) -> Path:
    from a124_core.reference.tiny_depth import build_tiny_depth_anything

    return build_tiny_depth_anything(tmp_path_factory.mktemp("depth") / "depth-anything-tiny")


@pytest.fixture
def empty_homes(tmp_path, monkeypatch):
    """Point every folder rembg reads at empty temporary folders."""
    for var in ("U2NET_HOME", "REMBG_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.fixture
def no_rembg(empty_homes, monkeypatch):
    """Empty rembg folders and an rembg that cannot be imported: reaching it would be a bug."""
    monkeypatch.setitem(sys.modules, "rembg", None)
    return empty_homes
