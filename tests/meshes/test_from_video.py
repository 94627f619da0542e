"""Mesh from video (issue 26): the clip of a mesh in motion, on a video model's wider canvas, is cropped so that
its first frame lands on the mesh's own front render (the image the video model was given)."""

from __future__ import annotations

import pytest
import torch

from a124_core.meshes.from_video import front_view, mesh_clip, object_box
from a124_core.reference import ClipConfig, ReferenceConfig
from a124_core.reference.recentre import object_bbox
from tests.oracle.clip_mesh import MeshTruth, film

from ..meshes import builder


@pytest.fixture(scope="module")
def truth():
    from a124_core.meshes.normalise import DEFAULT_RADIUS, fit_transform

    mesh = builder.build_test_mesh()
    return MeshTruth(mesh, fit_transform(mesh.vertices, mesh.faces, DEFAULT_RADIUS).to_scene)


def test_front_view_is_the_mesh_from_the_reference_camera(truth):
    view = front_view(truth.asset, 64)
    exact = truth.render(0.0, 90.0, 0.0, 64, 64)
    assert torch.allclose(view.rgb, exact["rgb"][0].permute(2, 0, 1), atol=1e-5)
    y0, y1, x0, x1 = object_box(view)
    assert 0 < y0 < y1 < 1 and 0 < x0 < x1 < 1 and x1 - x0 > y1 - y0, "the arms make it wider than tall"


def test_a_film_on_a_wider_canvas_is_cropped_back_onto_the_front_view(truth):
    frames, masks = film(truth, num_frames=6)
    assert frames.shape[1:3] == (56, 96), "the film is not square: a video model's canvas"
    size = 64
    clip = mesh_clip(truth.asset, frames=frames, masks=masks, config=ClipConfig(reference=ReferenceConfig(size=size)))
    view = front_view(truth.asset, size)
    inter = (clip.mask[0] * view.mask).sum()
    union = ((clip.mask[0] + view.mask) > 0).float().sum()
    assert float(inter / union) > 0.9, "frame 0 covers the front view's silhouette"
    box, front = object_bbox(clip.mask[0, 0]), object_bbox(view.mask[0])
    assert all(abs(a - b) <= 2 for a, b in zip(box, front)), (box, front)
    assert float((clip.rgb[0] - view.rgb).abs().mean()) < 0.05
    later = object_bbox(clip.mask[-1, 0])
    assert later[0] < box[0] - 2, "the raised arms reach higher in the last frame: the motion is kept"
    with pytest.raises(ValueError, match="either as frames"):
        mesh_clip(truth.asset, frames=frames, video="clip.mp4")
