"""MVDream's cameras: four orthogonal views around a random azimuth, and the 4x4 matrices MVDream is conditioned on.

The matrix convention (bytedance/MVDream `camera_utils.py`; threestudio-mvdream's guidance, `normalize_camera`):
  1. The camera-to-world matrix in a y-up world, OpenGL camera axes (columns right, up, back), camera at
     (cos e sin a, sin e, cos e cos a) looking at the origin: exactly this pack's `Cameras.c2w` (SPEC 2) with
     elevation e = 90 - polar and the same azimuth a (0 looks from +z, growing toward +x).
  2. Left-multiplied by flip_yz = [[1,0,0,0],[0,0,-1,0],[0,1,0,0],[0,0,0,1]]: world y-up -> Blender's z-up,
     (x, y, z) -> (x, -z, y) (`convert_opengl_to_blender`; a proper rotation, handedness kept).
  3. The translation scaled to unit length (distance is not part of the condition; neither is the FOV).
  4. Flattened row-major to 16 numbers (the prior does this).
So our azimuth equals MVDream `get_camera`'s azimuth; threestudio's (from +x toward +y, z-up) is ours - 90.

The sampling is MVDream-threestudio's (configs/mvdream-sd21.yaml, data/random_multiview.py): the views of a group
share elevation, FOV and distance and sit at azimuths a0 + 360 i / N (i = 0..N-1, increasing; a0 uniform);
elevation range [0, 30] deg: with probability 0.5 (one draw per batch) uniform in degrees, else threestudio's
"uniform on the sphere" asin(2u - 1) with u uniform in [(lo + 90) / 180, (hi + 90) / 180] (for [0, 30] that is
sin(e) uniform in [0, 1/3], e <= 19.5 deg: the range is mapped in degrees, not sine; kept as the method ran);
FOV uniform in [15, 60] deg; distance = r / tan(FOV / 2) with r uniform in [0.8, 1.0] times the scene radius
(threestudio's `relative_radius`: the object fills the same part of the frame at any FOV).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .cameras import Cameras, make_cameras

#: MVDream's y-up (OpenGL world) -> z-up (Blender world) change of axes, applied on the left of c2w.
FLIP_YZ = ((1.0, 0.0, 0.0, 0.0), (0.0, 0.0, -1.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))


@dataclass(frozen=True)
class MultiViewCameraConfig:
    """Camera distribution of MVDream's multi-view SDS (MVDream-threestudio's mvdream-sd21 config)."""

    num_views: int = 4
    """Views per group (the views the prior denoises jointly)."""
    elevation_range_deg: tuple[float, float] = (0.0, 30.0)
    """Elevation above the equator (polar = 90 - elevation)."""
    p_uniform_elevation: float = 0.5
    """Probability that a batch's elevations are uniform in degrees; otherwise threestudio's asin formula."""
    fov_range_deg: tuple[float, float] = (15.0, 60.0)
    """Vertical field of view."""
    relative_distance_range: tuple[float, float] = (0.8, 1.0)
    """Distance x tan(FOV / 2) / scene_radius: half the frame's height at the origin, in scene radii."""
    scene_radius: float = 1.0
    """Radius the relative distance is measured in (threestudio's geometry radius 1; SPEC's box [-1, 1]^3)."""
    azimuth_range_deg: tuple[float, float] = (-180.0, 180.0)
    """The views of a group split this range evenly, starting at a uniform offset."""

    def __post_init__(self) -> None:
        checks = {
            "elevation_range_deg": -90.0 <= self.elevation_range_deg[0] <= self.elevation_range_deg[1] <= 90.0,
            "fov_range_deg": 0.0 < self.fov_range_deg[0] <= self.fov_range_deg[1] < 180.0,
            "relative_distance_range": 0.0 < self.relative_distance_range[0] <= self.relative_distance_range[1],
            "azimuth_range_deg": self.azimuth_range_deg[0] < self.azimuth_range_deg[1],
            "num_views": self.num_views >= 1,
            "p_uniform_elevation": 0.0 <= self.p_uniform_elevation <= 1.0,
            "scene_radius": self.scene_radius > 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"MultiViewCameraConfig: invalid {', '.join(bad)} ({self}).")


@dataclass
class MultiViewCameras:
    """A batch of view groups: the cameras to render and the matrices the multi-view prior reads."""

    cameras: Cameras  # [G * N] cameras, group-major, azimuth increasing within a group
    matrices: Tensor  # [G * N, 4, 4] MVDream camera matrices (`mvdream_camera_matrices`)

    def __len__(self) -> int:
        return len(self.cameras)


def mvdream_camera_matrices(cameras: Cameras) -> Tensor:
    """Cameras [B] -> MVDream camera matrices [B, 4, 4]: flip_yz @ c2w with the translation made unit length."""
    c2w = cameras.c2w.float()
    matrices = torch.tensor(FLIP_YZ, dtype=c2w.dtype, device=c2w.device) @ c2w
    position = matrices[:, :3, 3]
    matrices[:, :3, 3] = position / (position.norm(dim=-1, keepdim=True) + 1e-8)
    return matrices


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def sample_multiview_cameras(
    num_groups: int, config: MultiViewCameraConfig = MultiViewCameraConfig(), generator: torch.Generator | None = None
) -> MultiViewCameras:
    """`num_groups` groups of `config.num_views` views (Dream-in-4D's static batch: 8 at 64 px = 2, 4 at 256 = 1)."""
    if num_groups < 1:
        raise ValueError(f"num_groups must be >= 1, got {num_groups}.")
    n = config.num_views
    lo, hi = config.elevation_range_deg
    if float(torch.rand(1, generator=generator)) < config.p_uniform_elevation:
        elevation = _uniform(num_groups, lo, hi, generator)
    else:  # threestudio's inverse-transform sampling (the range mapped linearly in degrees, then asin)
        u = _uniform(num_groups, (lo + 90.0) / 180.0, (hi + 90.0) / 180.0, generator)
        elevation = torch.rad2deg(torch.asin(2.0 * u - 1.0))
    a_lo, a_hi = config.azimuth_range_deg
    start = torch.rand(num_groups, generator=generator)
    azimuth = a_lo + (start[:, None] + torch.arange(n)[None, :]) / n * (a_hi - a_lo)  # [G, N]
    fov = _uniform(num_groups, *config.fov_range_deg, generator)
    relative = _uniform(num_groups, *config.relative_distance_range, generator)
    distance = relative * config.scene_radius / torch.tan(torch.deg2rad(fov) / 2)
    cams = make_cameras(
        (90.0 - elevation).repeat_interleave(n),
        azimuth.reshape(-1),
        distance.repeat_interleave(n),
        fov.repeat_interleave(n),
    )
    return MultiViewCameras(cameras=cams, matrices=mvdream_camera_matrices(cams))


def orbit_group(
    elevation_deg: float = 15.0,
    azimuth_start_deg: float = 0.0,
    num_views: int = 4,
    distance: float = 1.8,
    fov_y_deg: float = 40.0,
) -> MultiViewCameras:
    """One group at fixed angles (MVDream's `get_camera(num_views, elevation, azimuth_start)` for evaluation)."""
    azimuth = azimuth_start_deg + 360.0 * torch.arange(num_views, dtype=torch.float32) / num_views
    cams = make_cameras(90.0 - elevation_deg, azimuth, distance, fov_y_deg)
    return MultiViewCameras(cameras=cams, matrices=mvdream_camera_matrices(cams))


__all__ = [
    "FLIP_YZ",
    "MultiViewCameraConfig",
    "MultiViewCameras",
    "mvdream_camera_matrices",
    "orbit_group",
    "sample_multiview_cameras",
]
