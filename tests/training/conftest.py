"""Shared fixtures: the panda reference, tiny priors built through the library, and a static + coarse run."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image

from a124_core.presets import preset
from a124_core.reference import ReferenceConfig, build_reference
from a124_core.training.coarse_stage import CoarseStage, DynamicPriors
from a124_core.training.runner import train
from a124_core.training.scene import Scene
from a124_core.training.static_stage import StaticPriors, StaticStage

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.paths import EXAMPLES  # noqa: E402


def load_reference(size: int = 64):
    """The panda example with its alpha and its depth image (larger = nearer), recentred at `size`."""
    folder = EXAMPLES / "panda-dance"
    config = ReferenceConfig(size=size, ti_size=size)
    return build_reference(Image.open(folder / "rgba.png"), depth=Image.open(folder / "depth.png"), config=config)


@pytest.fixture(scope="session")
def panda_reference():
    return load_reference(64)


@dataclass
class TinyPriors:
    sd: object
    zero123: object
    video: object
    controlnet: object


@pytest.fixture(scope="session")
def tiny_priors(tiny_models) -> TinyPriors:
    from a124_core.priors.controlnet_tile import ControlNetTilePrior
    from a124_core.priors.sd import StableDiffusionPrior
    from a124_core.priors.video import TextToVideoPrior
    from a124_core.priors.zero123 import Zero123Prior

    tiny = tiny_models
    return TinyPriors(
        sd=StableDiffusionPrior.from_pretrained(tiny.sd15, device="cpu"),
        zero123=Zero123Prior.from_pretrained(tiny.zero123, device="cpu"),
        video=TextToVideoPrior.from_pretrained(tiny.video, device="cpu"),
        controlnet=ControlNetTilePrior.from_pretrained(tiny.controlnet_tile, tiny.sd15, device="cpu"),
    )


@dataclass
class SmokeRun:
    static: Scene
    coarse: Scene
    checkpoints: Path
    seconds: dict[str, float]


@pytest.fixture(scope="session")
def smoke_run(panda_reference, tiny_priors, tmp_path_factory) -> SmokeRun:
    """Static and coarse stages at the smoke preset with the tiny priors (checkpoints on disk)."""
    out = tmp_path_factory.mktemp("smoke_ckpt")
    p = preset("smoke")
    start = time.perf_counter()
    static = train(
        StaticStage(p.static, panda_reference, StaticPriors(tiny_priors.sd, tiny_priors.zero123), prompt="a panda"),
        checkpoint_dir=out,
    )
    mid = time.perf_counter()
    coarse = train(
        CoarseStage(
            p.coarse,
            panda_reference,
            static,
            DynamicPriors(tiny_priors.video, tiny_priors.zero123),
            prompt="a panda is dancing",
        ),
        checkpoint_dir=out,
    )
    end = time.perf_counter()
    return SmokeRun(static, coarse, out, {"static": mid - start, "coarse": end - mid})


def parameters_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
