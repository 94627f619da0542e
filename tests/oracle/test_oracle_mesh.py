"""The real mesh-animation stage, driven by a video oracle that knows the limb mesh's arms rotating about their
shoulder joints, moves the user's own vertices toward that motion while ARAP, at the shipped default weight
(`ARAPTermConfig.weight` = 3000 on the dimensionless strain energy), keeps the rigid parts' edges: on the 132-vertex
limb mesh and on its 2x subdivided copy (2.1k vertices; 108 and 1.6k welded) alike.

Measured (100 steps, 4 frames at 20 x 36, one thread; python -m tests.oracle.mesh_animation) on today's code: mean
vertex error over the held-out times / the rest pose's (t = 0.85 alone), and the rigid edges' length change, mean
(p95), at the default and, in the same test, with ARAP off:

| mesh | error / rest (t = 0.85) | edges, default | edges, ARAP off | ratio of means | old energy at 3000 |
|---|---|---|---|---|---|
| 132 vertices | 0.66 (0.75) | 3.16 % (12.7 %) | 4.15 % (14.1 %) | 0.76 | 4.22 %: 1.02 |
| 2.1k vertices | 0.58 (0.61) | 3.64 % (14.9 %) | 5.42 % (17.5 %) | 0.67 | 5.29 %: 0.98 |

On 132 vertices at stage seeds 1 and 2 the ratio is 0.63 and 0.72, while the default's own p95 ranges over 12.5-15.4 %
and ARAP off's over 14.1-26.7 %: rounding-level changes (issue 27's fused ops and packed compositing) move these
100-step fits by that much (this p95 read 6.1 %, then 10.4 %, then 12.7 % on the same seed), so the edge check
compares the default with ARAP off in the same conditions instead of holding one absolute bound.

Mutations (python -m tests.oracle.mutations mesh-arap-off mesh-arap-length-squared; the reversed motion is
`mesh_run(motion=-1)`): ARAP off (ratio 1) and the energy before issue 24 (a mean of absolute squared residuals: the
strain x the squared edge length, ~2e-2 on the coarse mesh, ~1e-3 on the fine one; ratio 1.02 / 0.98) fail the edge
check; the reversed motion
fails the error bounds. The 26k-vertex copy (`mesh_animation.DENSE`, docs/animate-mesh.md) takes ~14 min a run on
these shared CPUs, so the test runs the largest subdivision that fits CI's few minutes (2.1k vertices: ~3-5 min
here, a third of it the mesh fit).
"""

from __future__ import annotations

import pytest
import torch

from . import mesh_animation

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

#: Mean output error over the held-out times at most this fraction of the rest pose's (measured 0.66 / 0.58;
#: the reversed motion 1.59).
ERROR_RATIO_MAX = 0.85
#: The same at the end of the motion, t = 0.85 (measured 0.75 / 0.61; reversed 1.45).
LATE_RATIO_MAX = 0.95
#: The rigid parts' mean relative edge-length change at the default weight, at most this fraction of the same run's
#: with ARAP off (measured on 132 vertices 0.76 / 0.63 / 0.72 at stage seeds 3407 / 1 / 2; 2.1k 0.67).
#: Paired, because an absolute bound is at the mercy of the fit's noise: over those seeds the default's p95 spans
#: 12.5-15.4 % and ARAP off's 14.1-26.7 %, so no one number separates them, while every seed's pair does.
EDGE_CHANGE_RATIO_MAX = 0.85


@pytest.fixture(scope="module", params=mesh_animation.TESTED_SUBDIVISIONS, ids=lambda n: f"{n}-subdivisions")
def mesh_run(request):
    """(subdivisions, the run at the default ARAP weight, the same run with ARAP off)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        default = mesh_animation.mesh_run(subdivisions=request.param)
        return request.param, default, mesh_animation.mesh_run(arap_weight=0.0, subdivisions=request.param)
    finally:
        torch.set_num_threads(threads)


def test_vertices_follow_the_articulated_motion_at_held_out_times(mesh_run):
    subdivisions, run, _ = mesh_run
    print(f"mesh animation + video oracle, {subdivisions} subdivisions:", run)
    error = sum(run.vertex_error.values()) / len(run.vertex_error)
    still = sum(run.still_error.values()) / len(run.still_error)
    assert error <= ERROR_RATIO_MAX * still, run
    late = max(mesh_animation.HELD_OUT_TIMES)
    assert run.vertex_error[late] <= LATE_RATIO_MAX * run.still_error[late], "the end of the motion"
    assert run.oracle.calls == 100, "video guidance on every step"


def test_arap_keeps_rigid_edge_lengths(mesh_run):
    subdivisions, run, off = mesh_run
    print(f"rigid edges' change, {subdivisions} subdivisions: mean {run.edge_change:.2%} (ARAP off "
          f"{off.edge_change:.2%}), p95 {run.edge_change_p95:.2%} ({off.edge_change_p95:.2%})")  # fmt: skip
    assert run.edge_change <= EDGE_CHANGE_RATIO_MAX * off.edge_change, (run, off)
