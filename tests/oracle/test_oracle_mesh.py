"""The real mesh-animation stage, driven by a video oracle that knows the limb mesh's arms rotating about their
shoulder joints, moves the user's own vertices toward that motion while ARAP keeps the rigid parts' edges.

Measured (100 steps, 4 frames of 32 px, python -m tests.oracle.mesh_animation, seeded): mean vertex error over the
held-out times 0.037 scene units where the mesh left at rest scores 0.065 (t = 0.85: 0.064 vs 0.106), mean rigid
edge change 6.4 % (p95 21 %). ARAP off: see the report in the module docstring of mesh_animation.py. Mutations:
the oracle's motion reversed (arms lowered) -> the error exceeds the rest pose's; ARAP weight 0 -> the edge bound
fails.
"""

from __future__ import annotations

import pytest
import torch

from . import mesh_animation

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

#: Output error at least this much below the rest pose's (1 = no motion learned; measured ~0.56).
ERROR_RATIO_MAX = 0.75
#: Mean relative change of the rigid parts' edge lengths with ARAP on (measured 6.4 %).
EDGE_CHANGE_MAX = 0.10


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
    assert mesh_run.vertex_error[late] <= ERROR_RATIO_MAX * mesh_run.still_error[late], "the end of the motion"
    assert mesh_run.oracle.calls == 100, "video SDS on every step"


def test_arap_keeps_rigid_edge_lengths(mesh_run):
    assert mesh_run.edge_change <= EDGE_CHANGE_MAX, mesh_run
