"""The real refine stage, driven by the image-control oracle, pulls the coarse result to the truth.

The oracle's control image must be the frozen coarse model's render of the very view and time being trained;
a control image from any other view becomes the target (a tile model reproduces its control image).
"""

from __future__ import annotations

import pytest

from . import setup

pytestmark = [pytest.mark.oracle, pytest.mark.slow]


def test_image_control_oracle_refines_the_coarse_scene(oracle_coarse, one_thread):
    result = setup.refine_run(oracle_coarse.scene)
    print("refine + image-control oracle:", result)
    control = result.oracles["controlnet"]
    assert control.mismatches == 0 and control.matches > 50, "control image = frozen coarse render of that view"
    assert set(control.scales) == {7.5}
    assert setup.mean(result.psnr) >= setup.mean(result.start) + 1.0, result
