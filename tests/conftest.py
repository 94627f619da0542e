"""Fixtures shared by the whole suite: tiny random priors on disk and a one-thread torch."""

from __future__ import annotations

import os

import pytest
import torch

from a124_core.priors.tiny import TinyModels, build_tiny_models

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # loaders must never need the hub


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    """Every tiny prior in its real on-disk layout, built once per session through the library builder."""
    return build_tiny_models(tmp_path_factory.mktemp("models"), seed=0)


@pytest.fixture
def one_thread():
    """Tiny models run far slower when torch's thread pool oversubscribes the 2 shared CPU cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
