"""Tiny random-weight priors on disk, built once per test session through the library builder."""

from __future__ import annotations

import os

import pytest
import torch

from a124_core.priors.tiny import TinyModels, build_tiny_models

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # loaders must never need the hub


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models are far slower when torch's thread pool oversubscribes the shared CPU cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build_tiny_models(tmp_path_factory.mktemp("models"), seed=0)
