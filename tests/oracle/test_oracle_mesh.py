"""The real mesh-animation stage, driven by a video oracle that knows the limb mesh's arms rotating about their
shoulder joints, moves the user's own vertices toward that motion while ARAP keeps the rigid parts' edges.

Measured (100 steps, 4 frames of 32 px, ARAP weight 1e5, one thread; python -m tests.oracle.mesh_animation): mean
vertex error over the held-out times 0.042 scene units where the mesh left at rest scores 0.065 (t = 0.85: 0.073
vs 0.106); rigid edge change mean 4.4 %, p95 13.8 %. Mutations: ARAP off -> p95 23.5 % (the edge bound fails); the
oracle's motion reversed (arms lowered) -> the error exceeds the bound.
"""

from __future__ import annotations

import pytest
import torch

from . import mesh_animation

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

#: Output error at least this much below the rest pose's (1 = no motion learned; measured 0.64).
ERROR_RATIO_MAX = 0.8
#: 95th percentile of the rigid parts' relative edge-length change with ARAP (measured 13.8 %; off: 23.5 %).
EDGE_CHANGE_P95_MAX = 0.18


@pytest.fixture(scope="module")
def mesh_run():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return mesh_animation.mesh_run()
    finally:
        torch.set_num_threads(threads)


def test_vertices_follow_the_articulated_motion_at_held_out_times(mesh_run):
    print("mesh animation + video oracle:", mesh_run)
    error = sum(mesh_run.vertex_error.values()) / len(mesh_run.vertex_error)
    still = sum(mesh_run.still_error.values()) / len(mesh_run.still_error)
    assert error <= ERROR_RATIO_MAX * still, mesh_run
    late = max(mesh_animation.HELD_OUT_TIMES)
    assert mesh_run.vertex_error[late] <= 0.85 * mesh_run.still_error[late], "the end of the motion"
    assert mesh_run.oracle.calls == 100, "video SDS on every step"


def test_arap_keeps_rigid_edge_lengths(mesh_run):
    assert mesh_run.edge_change_p95 <= EDGE_CHANGE_P95_MAX, mesh_run
