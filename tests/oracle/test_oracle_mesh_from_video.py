"""Mesh from video through the real stage (issue 26): the limb mesh's arms rising, filmed from the front on a wider
canvas (tests/oracle/clip_mesh.py), animate the mesh itself; the output vertices at times between the film's frames
follow the known motion, at the shipped ARAP default.

Measured (100 steps, 4 frames a step, 32 px, ARAP weight 3000 = ARAPTermConfig's default, one thread; python -m
tests.oracle.clip_mesh): mean vertex error over t = 0.2 / 0.5 / 0.85 of 0.039 scene units where the mesh left at
rest scores 0.065 (ratio 0.59; t = 0.85: 0.068 vs 0.106). Mutation: the film reversed in time -> ratio 0.91.
"""

from __future__ import annotations

import pytest

from . import clip_mesh, clip_run, mesh_animation

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

#: Output error at most this fraction of the rest pose's (measured 0.59; the film reversed 0.91).
ERROR_RATIO_MAX = 0.7


@pytest.fixture(scope="module")
def mesh_run():
    return clip_run.on_one_thread(clip_mesh.mesh_video_run)


def test_the_film_of_its_motion_animates_the_mesh(mesh_run):
    print("mesh from video + per-frame image-pose oracle:", mesh_run)
    error = sum(mesh_run.vertex_error.values()) / len(mesh_run.vertex_error)
    still = sum(mesh_run.still_error.values()) / len(mesh_run.still_error)
    assert error <= ERROR_RATIO_MAX * still, mesh_run
    late = max(mesh_animation.HELD_OUT_TIMES)
    assert mesh_run.vertex_error[late] <= 0.8 * mesh_run.still_error[late], "the end of the motion"
    # Each frame's Zero123 condition is its own frame of the film: the pose oracle finds it by the nearest film frame.
    # The clip is resampled from the film's wider canvas onto the front view, and at the start of the motion two
    # neighbouring frames differ by a fraction of a pixel, so the nearest may be the neighbour; never further.
    matched = mesh_run.oracle.matched
    assert len(matched) == clip_mesh.NUM_FRAMES and matched == sorted(matched), matched
    assert all(abs(m - i) <= 1 for i, m in enumerate(matched)), matched
    assert matched[0] == 0 and matched[-1] == clip_mesh.NUM_FRAMES - 1, matched
