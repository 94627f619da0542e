"""The file <-> scene transform: centred bounding box, bounding radius 0.5, exact inverse."""

from __future__ import annotations

import json

import numpy as np
import pytest

from a124_core.meshes import DEFAULT_RADIUS, MeshTransform, fit_transform

from .builder import CENTRE, build_test_mesh


def test_fit_transform_centres_and_scales_the_test_mesh():
    mesh = build_test_mesh()
    transform = fit_transform(mesh.vertices, mesh.faces)
    np.testing.assert_allclose(transform.centre, CENTRE, atol=1e-9)  # the model is symmetric about its centre
    scene = transform.to_scene(mesh.vertices)
    np.testing.assert_allclose((scene.min(0) + scene.max(0)) / 2, 0.0, atol=1e-9)
    assert np.linalg.norm(scene, axis=1).max() == pytest.approx(DEFAULT_RADIUS)
    assert np.abs(scene).max() < 1.0  # inside the bound with room to move


def test_round_trip_points_offsets_and_json():
    rng = np.random.default_rng(0)
    transform = fit_transform(rng.normal(size=(50, 3)) * 7 + 3, radius=0.6)
    points = rng.normal(size=(4, 10, 3))
    np.testing.assert_allclose(transform.to_file(transform.to_scene(points)), points, atol=1e-12)
    np.testing.assert_allclose(transform.to_scene(transform.to_file(points)), points, atol=1e-12)
    # an offset in the scene is the difference of two mapped points (no translation)
    a, b = points[0], points[1]
    np.testing.assert_allclose(
        transform.offsets_to_file(a - b), transform.to_file(a) - transform.to_file(b), atol=1e-12
    )
    again = MeshTransform.from_dict(json.loads(json.dumps(transform.to_dict())))
    assert again == transform


def test_unused_vertices_do_not_move_the_centre():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [100, 100, 100]], float)
    transform = fit_transform(vertices, np.array([[0, 1, 2]]))
    np.testing.assert_allclose(transform.centre, [0.5, 0.5, 0.0])


def test_bad_radius_and_empty_extent():
    with pytest.raises(ValueError, match="radius must lie in"):
        fit_transform(np.eye(3), radius=1.5)
    with pytest.raises(ValueError, match="no extent"):
        fit_transform(np.ones((4, 3)))
