"""Fixtures for textual-inversion tests: the tiny SD1.5 folder and a one-thread torch (the tiny models run
~70x slower when 2 shared cores are oversubscribed by torch's default thread pool)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield


@pytest.fixture(scope="session")
def tiny_sd15(tiny_models):
    return tiny_models.sd15


@pytest.fixture
def prior(tiny_sd15):
    """A fresh prior per test: training adds a token to its tokenizer and embedding table."""
    from a124_core.priors.sd import StableDiffusionPrior

    return StableDiffusionPrior.from_pretrained(tiny_sd15, device="cpu")


@pytest.fixture(scope="session")
def panda_rgba():
    """The panda example's recentred RGBA [4, 64, 64] (small: the tiny prior trains at 32 px)."""

    from PIL import Image

    from a124_core.reference import build_reference
    from tests.paths import EXAMPLES

    ref = build_reference(Image.open(EXAMPLES / "panda-dance" / "rgba.png"))
    return torch.nn.functional.interpolate(ref.rgba_512[None], size=(64, 64), mode="area")[0]
