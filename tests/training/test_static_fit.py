"""Reconstruction-only oracle: the static stage fits the panda from the reference view to >= 25 dB at 64x64."""

from __future__ import annotations

import time

import pytest
import torch

from a124_core.fields.encoding import GridConfig
from a124_core.fields.static import FieldConfig
from a124_core.rendering.occupancy import OccupancyConfig
from a124_core.rendering.renderer import RenderConfig
from a124_core.training.config import LoopConfig, RegularisersConfig, StaticStageConfig
from a124_core.training.losses import depth_loss
from a124_core.training.runner import Callbacks, train
from a124_core.training.static_stage import StaticStage


@pytest.mark.slow
def test_reference_fit_reaches_25_db(panda_reference):
    # A small grid keeps this about the loop and the losses; 300 steps take ~30 s on an idle 2-core CPU.
    config = StaticStageConfig(
        steps=300,
        reference_size=64,
        field=FieldConfig(
            grid=GridConfig(num_levels=8, base_resolution=8, finest_resolution=128, log2_entries_per_level=15),
            hidden_dim=32,
        ),
        render=RenderConfig(num_samples=32, num_importance=16),
        occupancy=OccupancyConfig(resolution=32, update_every=16),
        regularisers=RegularisersConfig(opacity_entropy=0.0, orientation=0.0, normal_tv=0.0, normal_blur=0.0),
        loop=LoopConfig(progress_every=50, preview_every=150, preview_size=64),
    )
    stage = StaticStage(config, panda_reference)
    reports: list[tuple[int, dict, object]] = []
    start = time.perf_counter()
    train(stage, Callbacks(on_progress=lambda s, n, losses, preview: reports.append((s, losses, preview))))
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        out = stage.render_view(stage.reference_view(None), 64, perturb=False)
    target = stage.targets["rgb"]
    psnr = float(-10 * torch.log10(((out["rgb"] - target) ** 2).mean()))
    depth = float(depth_loss(out["depth"], stage.targets["depth"], stage.targets["mask"]))
    print(
        f"reference fit: {psnr:.2f} dB, depth (1 - pearson) / 2 = {depth:.3f}, {config.steps} steps in {elapsed:.1f} s"
    )
    assert psnr >= 25.0
    assert depth < 0.1, "the rendered distance must anti-correlate with the reference nearness"
    # The untrained field (blob at the centre) is far from it: the oracle measures training, not the init.
    fresh = StaticStage(config, panda_reference)
    with torch.no_grad():
        out0 = fresh.render_view(fresh.reference_view(None), 64, perturb=False)
    assert float(-10 * torch.log10(((out0["rgb"] - target) ** 2).mean())) < 15.0
    # The silhouette matches too.
    iou = ((out["opacity"] > 0.5) & (stage.targets["mask"] > 0.5)).sum() / (
        (out["opacity"] > 0.5) | (stage.targets["mask"] > 0.5)
    ).sum()
    assert float(iou) > 0.9
    # Progress every 50 steps, previews [64, 64, 3] at 150 and 300, losses decreasing.
    assert [r[0] for r in reports] == [50, 100, 150, 200, 250, 300]
    assert [r[2] is not None for r in reports] == [False, False, True, False, False, True]
    assert reports[-1][2].shape == (64, 64, 3)
    assert reports[-1][1]["total"] < 0.2 * reports[0][1]["total"]
    assert "depth" in reports[-1][1], "the panda reference has a depth image: the depth loss must run"
