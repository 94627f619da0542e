"""The real static stage in text mode (no reference image), driven by the oracle MVDream (it decodes the camera
matrices it is given with MVDream's convention, written out in tests/oracle/multiview.py) and a 2D oracle that knows
the object only from the front (a 2D prior's Janus problem), at Dream-in-4D's weights (lambda_2D = lambda_3D = 1)
and its schedule scaled to 32 px (8 views per step, then 4).

Measured (200 steps, 32 px, held-out views with the occupancy grid): MVDream + 2D 17.0 dB, the 2D prior alone 11.0 dB
(start 7.3 dB). `python -m tests.oracle.mutations mvdream-views-shuffled mvdream-matrix-transposed
mvdream-azimuth-flipped` breaks the cameras where the term builds them: each view given its neighbour's matrix
9.7 dB, the matrices transposed 8.5 dB, the azimuth flipped 11.1 dB; each fails the bound below.
"""

from __future__ import annotations

import pytest

from .multiview_setup import STEPS, text_run

pytestmark = [pytest.mark.oracle, pytest.mark.slow]


def test_multiview_oracle_lifts_text_mode_well_above_the_2d_prior_alone(one_thread):
    both = text_run()
    alone = text_run(multiview=False)
    print("text mode, MVDream + 2D:", both, "| 2D alone:", alone)
    mvdream, sd = both.oracles["mvdream"], both.oracles["sd"]
    assert mvdream.invalid_cameras == 0 and mvdream.calls == STEPS, "every step's matrices are MVDream cameras"
    assert sd.calls == STEPS and set(sd.scales) == {100.0} and sd.azimuth_mismatches == 0
    assert alone.oracles["sd"].azimuth_mismatches == 0
    assert both.psnr[None] >= 15.0 and both.psnr[None] >= alone.psnr[None] + 4.0, (both, alone)
