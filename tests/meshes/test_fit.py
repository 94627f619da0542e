"""Mesh -> canonical field: the fitted static scene renders like the mesh at held-out views."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from a124_core.cameras import make_cameras
from a124_core.fields.encoding import GridConfig
from a124_core.fields.static import FieldConfig, StaticField
from a124_core.meshes import (
    MeshFitConfig,
    MeshSurface,
    evaluate_fit,
    fit_transform,
    load_mesh,
    render_mesh,
    scene_from_mesh,
)
from a124_core.presets import preset
from a124_core.rendering.occupancy import OccupancyConfig
from a124_core.rendering.renderer import RenderConfig, render_cameras
from a124_core.training.scene import Scene

from .builder import build_test_mesh, write_glb

HELD_OUT = make_cameras(torch.tensor([80.0, 100.0, 70.0, 95.0]), torch.tensor([20.0, 110.0, -150.0, -60.0]))
EVAL_RENDER = RenderConfig(num_samples=64, num_importance=32)


@pytest.fixture(scope="module")
def asset(tmp_path_factory):
    return load_mesh(write_glb(build_test_mesh(), tmp_path_factory.mktemp("fit") / "model.glb"))


def smoke_config(**overrides) -> MeshFitConfig:
    static = preset("smoke").static
    return MeshFitConfig(
        field=static.field,
        occupancy=static.occupancy,
        render=RenderConfig(num_samples=32, num_importance=16),
        **overrides,
    )


def test_smoke_size_fit_renders_like_the_mesh(asset, one_thread, tmp_path):
    config = smoke_config(steps=200, photometric_steps=60, photometric_rays=1024, voxel_resolution=128)
    start = time.perf_counter()
    result = scene_from_mesh(asset, config)
    seconds = time.perf_counter() - start
    report = evaluate_fit(result, HELD_OUT, 48, EVAL_RENDER, num_points=4000)
    print(
        f"smoke fit: {report.psnr:.2f} dB, IoU {report.iou:.3f} (voxel target {report.voxel_iou:.3f}), {seconds:.1f} s"
    )
    assert report.psnr > 21.0 and report.iou > 0.75 and report.voxel_iou > 0.8
    # the untrained field (a density blob at the centre) is far from it: the numbers measure the fit
    fresh = Scene(StaticField(config.field), result.scene.occupancy, "static")
    untrained = evaluate_fit(dataclasses.replace(result, scene=fresh), HELD_OUT, 48, EVAL_RENDER, num_points=4000)
    print(f"untrained: {untrained.psnr:.2f} dB, IoU {untrained.iou:.3f}")
    assert untrained.psnr < 14.0 and untrained.iou < 0.3
    # a static scene the coarse stage can start from, written and read back like any scene file
    scene = result.scene
    assert scene.stage == "static" and not scene.is_dynamic and scene.complete
    assert bool(scene.occupancy.refreshed.all()) and 0.0 < scene.occupancy.occupancy_fraction() < 0.5
    assert scene.stage_config["mesh_transform"] == result.transform.to_dict()
    loaded = Scene.load(scene.save(tmp_path / "mesh_static.safetensors"))
    with torch.no_grad():
        a = render_cameras(scene.field, HELD_OUT[:1], 24, 24, config=EVAL_RENDER, occupancy=scene.occupancy)["rgb"]
        b = render_cameras(loaded.field, HELD_OUT[:1], 24, 24, config=EVAL_RENDER, occupancy=loaded.occupancy)["rgb"]
    assert torch.equal(a, b)


def test_front_render_of_the_mesh_is_available_for_conditioning(asset):
    """The dynamic stages can condition on the mesh seen from the reference camera (polar 90, azimuth 0)."""
    surface = MeshSurface.from_asset(asset, fit_transform(asset.vertices, asset.faces))
    front = render_mesh(surface, make_cameras(90.0, 0.0), 64, 64)
    assert front["rgb"].shape == (1, 64, 64, 3) and 0.1 < float(front["opacity"].mean()) < 0.6


@pytest.mark.slow
def test_mid_size_fit(asset, one_thread):
    field = FieldConfig(
        grid=GridConfig(num_levels=8, base_resolution=8, finest_resolution=128, log2_entries_per_level=15),
        hidden_dim=32,
    )
    config = MeshFitConfig(
        field=field, occupancy=OccupancyConfig(resolution=64), render=RenderConfig(num_samples=32, num_importance=16)
    )
    start = time.perf_counter()
    result = scene_from_mesh(asset, config)
    seconds = time.perf_counter() - start
    report = evaluate_fit(result, HELD_OUT, 64, EVAL_RENDER, num_points=10000)
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    print(f"mid fit: {report.psnr:.2f} dB, IoU {report.iou:.3f} (voxel {report.voxel_iou:.3f}); {seconds:.1f} s")
    print(f"  parts: {parts}")
    assert report.psnr > 26.0 and report.iou > 0.88
