"""Session runs shared by the oracle tests: the static result feeds the coarse test, the coarse one the refine test."""

from __future__ import annotations

import pytest
import torch

from . import setup


@pytest.fixture(scope="session")
def oracle_static():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return setup.static_run()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def oracle_coarse(oracle_static):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return setup.coarse_run(oracle_static.scene)
    finally:
        torch.set_num_threads(threads)
