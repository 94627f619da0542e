"""Rendering a scene for the output nodes: the trained ray-marching settings, the four render modes as one IMAGE
batch, and ComfyUI's VIDEO around the frames."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import torch

from .glue import clone_tree, torch_device

RENDER_MODES = ("test orbit", "fixed camera", "orbit while animating", "orbit grid")
CHANNELS = ("albedo", "lambertian", "depth", "normal", "mask")


def render_config(scene: Any) -> Any:
    """The ray-marching settings the scene was trained with (a smoke scene renders with its cheap ones)."""
    from a124_core.rendering.renderer import RenderConfig
    from a124_core.training.config import config_from_dict

    data = (scene.stage_config or {}).get("render")
    return config_from_dict(RenderConfig, data) if isinstance(data, dict) else RenderConfig()


def render_orbit(scene: Any, mode: str, channel: str, views: int, frames: int, resolution: int) -> torch.Tensor:
    """IMAGE [N, H, W, 3] of one render mode (views one after another for the test orbit)."""
    from a124_core.outputs.render import (
        OrbitConfig,
        orbit_grid_video,
        render_fixed_camera,
        render_orbit_animating,
        render_test_orbit,
    )

    config = OrbitConfig(num_views=views, num_frames=frames, resolution=resolution)
    local = clone_tree(scene).to(torch_device())  # the input stays untouched for ComfyUI's cache
    args = dict(channels=(channel,), occupancy=local.occupancy, render_config=render_config(scene))
    if mode == "fixed camera":
        return render_fixed_camera(local.field, config, **args)[channel]
    if mode == "orbit while animating":
        return render_orbit_animating(local.field, config, **args)[channel]
    orbit = render_test_orbit(local.field, config, **args)[channel]  # [V, F, H, W, 3]
    return orbit_grid_video(orbit) if mode == "orbit grid" else orbit.reshape(-1, *orbit.shape[2:])


def comfy_video(images: torch.Tensor, fps: float) -> Any:
    """ComfyUI's VIDEO (VideoFromComponents: the exact frames, encoded by whoever saves it) from IMAGE [N, H, W, 3]."""
    from comfy_api.v0_0_2 import InputImpl, Types

    rate = Fraction(round(float(fps) * 1000), 1000)
    return InputImpl.VideoFromComponents(Types.VideoComponents(images=images.cpu(), frame_rate=rate))
