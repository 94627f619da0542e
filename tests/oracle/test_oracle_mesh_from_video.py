"""Mesh from video through the real stage (issue 26): the limb mesh's arms rising, filmed from the front on a wider
canvas (tests/oracle/clip_mesh.py), animate the mesh itself; the output vertices at times between the film's frames
follow the known motion, at the shipped ARAP default.

Measured (100 steps, 4 frames a step, 32 px, ARAP weight 1000 = ARAPTermConfig's default, one thread; python -m
tests.oracle.clip_mesh): mean vertex error over t = 0.2 / 0.5 / 0.85 of 0.036 scene units where the mesh left at
rest scores 0.065 (ratio 0.55; t = 0.85: 0.067 vs 0.106). Mutation: the film reversed in time -> RATIO_REVERSED.
"""

from __future__ import annotations

import pytest

from . import clip_mesh, clip_run, mesh_animation

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

#: Output error at most this fraction of the rest pose's (measured 0.55).
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
    assert mesh_run.oracle.matched == list(range(clip_mesh.NUM_FRAMES)), "each frame found itself in the film"
