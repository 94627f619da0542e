"""Renders of a trained scene as ComfyUI IMAGE batches [N, H, W, 3] in [0, 1] (SPEC 10).

The test orbit (10 views x 64 frames at 400x400), a fixed-camera video (the reference view over time), an
orbit while animating (one camera step per frame) and a grid video of the orbit. Channels: albedo (lambertian
with ambient 1), lambertian (light from the camera), depth, normal and mask.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

from ..cameras import CameraConfig, Cameras, make_cameras, orbit_cameras
from ..rendering.occupancy import OccupancyGrid
from ..rendering.renderer import RenderConfig, render_cameras
from .export import tile_videos

CHANNELS = ("albedo", "lambertian", "depth", "normal", "mask")


@dataclass(frozen=True)
class OrbitConfig:
    """The test orbit of SPEC 10."""

    num_views: int = 10
    """Cameras around the object at azimuth 360 i / num_views."""
    num_frames: int = 64
    """Frames per view, at times k / (num_frames - 1)."""
    resolution: int = 400
    """Square render size in pixels."""
    polar_deg: float = 90.0
    """Elevation of the orbit (90 = equator)."""
    radius: float = 1.8
    """Camera distance."""
    fov_y_deg: float = 40.0
    """Vertical field of view."""
    ambient: float = 0.3
    """Ambient term of the 'lambertian' channel (its light comes from the camera)."""

    def __post_init__(self) -> None:
        if self.num_views < 1 or self.num_frames < 1:
            raise ValueError(f"num_views and num_frames must be >= 1, got {self.num_views}, {self.num_frames}")
        if self.resolution < 1:
            raise ValueError(f"resolution must be a positive number of pixels, got {self.resolution}")

    def times(self) -> list[float]:
        return [k / max(self.num_frames - 1, 1) for k in range(self.num_frames)]


def _check_channels(channels: tuple[str, ...]) -> None:
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown or not channels:
        raise ValueError(f"Unknown render channels {unknown or channels}; choose from {CHANNELS}")


def depth_to_image(depth: Tensor, opacity: Tensor) -> Tensor:
    """Depth [N, H, W, 1] -> grey [N, H, W, 3]: nearer is brighter, normalised over the foreground of the
    whole batch (so a video does not flicker), background black."""
    fg = opacity > 0.5
    if not bool(fg.any()):
        return torch.zeros(*depth.shape[:-1], 3, device=depth.device)
    near, far = depth[fg].min(), depth[fg].max()
    scaled = 1 - (depth - near) / (far - near).clamp_min(1e-6)
    return (scaled.clamp(0, 1) * fg).expand(*depth.shape[:-1], 3)


@torch.no_grad()
def render_frames(
    field,
    cameras: Cameras,
    times: list[float] | None,
    resolution: int,
    channels: tuple[str, ...] = ("albedo",),
    occupancy: OccupancyGrid | None = None,
    render_config: RenderConfig = RenderConfig(),
    ambient: float = 0.3,
) -> dict[str, Tensor]:
    """Render camera b at time times[b] (None for static fields); returns {channel: [B, H, W, 3]} on CPU."""
    _check_channels(channels)
    if resolution < 1:
        raise ValueError(f"resolution must be a positive number of pixels, got {resolution}")
    device = next(field.parameters()).device if hasattr(field, "parameters") else torch.device("cpu")
    cameras = cameras.to(device)
    white = torch.ones(3, device=device)
    out: dict[str, list[Tensor]] = {c: [] for c in channels}
    geometry = any(c in channels for c in ("depth", "normal", "mask"))
    for b in range(len(cameras)):
        cam, t = cameras[b], None if times is None else [times[b]]
        render = functools.partial(
            render_cameras, field, cam, resolution, resolution, t, render_config, occupancy, background=white
        )
        if "albedo" in channels or geometry:
            maps = render(need_normals="normal" in channels)
            if "albedo" in channels:
                out["albedo"].append(maps["rgb"].cpu())
            if "mask" in channels:
                out["mask"].append(maps["opacity"].expand(-1, -1, -1, 3).cpu())
            if "depth" in channels:
                out["depth"].append(maps["depth"].cpu())
                out.setdefault("_opacity", []).append(maps["opacity"].cpu())
            if "normal" in channels:
                n = torch.nn.functional.normalize(maps["normal"], dim=-1)
                alpha = maps["opacity"]
                out["normal"].append(((n + 1) / 2 * alpha + (1 - alpha)).cpu())
        if "lambertian" in channels:
            light = torch.nn.functional.normalize(cam.positions, dim=-1)
            maps = render(shading="lambertian", light_dirs=light, ambient=ambient)
            out["lambertian"].append(maps["rgb"].cpu())
    result = {c: torch.cat(v).clamp(0, 1) for c, v in out.items() if not c.startswith("_")}
    if "depth" in channels:
        result["depth"] = depth_to_image(result["depth"], torch.cat(out["_opacity"]))
    return result


def _clip_times(field, config: OrbitConfig) -> list[float] | None:
    """The orbit's frame times for a dynamic field; None (one frame per camera) for a static one."""
    return config.times() if getattr(field, "is_dynamic", False) else None


def _held_camera(polar_deg: float, azimuth_deg: float, num_frames: int, config: OrbitConfig) -> Cameras:
    """One camera held still for every frame of a clip."""
    polar, azimuth = torch.full((num_frames,), float(polar_deg)), torch.full((num_frames,), float(azimuth_deg))
    return make_cameras(polar, azimuth, config.radius, config.fov_y_deg)


def render_test_orbit(
    field,
    config: OrbitConfig = OrbitConfig(),
    channels: tuple[str, ...] = ("albedo",),
    occupancy: OccupancyGrid | None = None,
    render_config: RenderConfig = RenderConfig(),
) -> dict[str, Tensor]:
    """{channel: [views, frames, H, W, 3]}; a static field renders one frame per view."""
    cams = orbit_cameras(config.num_views, config.polar_deg, config.radius, config.fov_y_deg)
    times = _clip_times(field, config)
    per_view = [
        render_frames(
            field,
            _held_camera(polar, azimuth, len(times or [0.0]), config),
            times,
            config.resolution,
            channels,
            occupancy,
            render_config,
            config.ambient,
        )
        for polar, azimuth in zip(cams.polar_deg.tolist(), cams.azimuth_deg.tolist())
    ]
    return {c: torch.stack([p[c] for p in per_view]) for c in channels}


def render_fixed_camera(
    field,
    config: OrbitConfig = OrbitConfig(),
    channels: tuple[str, ...] = ("albedo",),
    occupancy: OccupancyGrid | None = None,
    render_config: RenderConfig = RenderConfig(),
    camera: CameraConfig = CameraConfig(),
) -> dict[str, Tensor]:
    """The reference view over time: {channel: [frames, H, W, 3]} (used for CLIP-I)."""
    times = _clip_times(field, config)
    cams = _held_camera(camera.reference_polar_deg, camera.reference_azimuth_deg, len(times or [0.0]), config)
    return render_frames(field, cams, times, config.resolution, channels, occupancy, render_config, config.ambient)


def render_orbit_animating(
    field,
    config: OrbitConfig = OrbitConfig(),
    channels: tuple[str, ...] = ("albedo",),
    occupancy: OccupancyGrid | None = None,
    render_config: RenderConfig = RenderConfig(),
) -> dict[str, Tensor]:
    """One full turn over the animation: frame k at azimuth 360 k / F and time k / (F - 1); [F, H, W, 3]."""
    cams = orbit_cameras(config.num_frames, config.polar_deg, config.radius, config.fov_y_deg)
    times = _clip_times(field, config)
    return render_frames(field, cams, times, config.resolution, channels, occupancy, render_config, config.ambient)


def orbit_grid_video(orbit: Tensor, columns: int | None = None, padding: int = 0) -> Tensor:
    """Tile the views of an orbit [V, F, H, W, 3] into one video [F, H', W', 3] (view 0 top-left)."""
    if orbit.dim() != 5:
        raise ValueError(f"orbit must be [views, frames, H, W, 3], got {tuple(orbit.shape)}")
    return tile_videos(list(orbit), columns=columns, padding=padding)
