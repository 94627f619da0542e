"""Cameras: one convention used everywhere (SPEC 2).

World is y-up with the object at the origin. A camera on the sphere sits at
r * (sin(polar) sin(azimuth), cos(polar), sin(polar) cos(azimuth)): polar is measured from +y (90 = equator),
azimuth 0 looks from +z and increases toward the camera's own right (from +z toward +x).
Camera-to-world matrices are OpenGL style (columns: right, up, back) and proper rotations (det +1), so from the
reference camera the image's right side shows world +x (the reference implementation mirrors this).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: Keeps look-at well defined at the poles, where the camera's forward axis meets world up.
_POLE_EPS_DEG = 1e-3


@dataclass(frozen=True)
class CameraConfig:
    """Camera distributions of the method (SPEC 2)."""

    radius: float = 1.8
    """Distance of every camera from the origin."""
    fov_y_deg: float = 40.0
    """Vertical field of view."""
    reference_polar_deg: float = 90.0
    """Polar angle of the reference view (the input image)."""
    reference_azimuth_deg: float = 0.0
    """Azimuth of the reference view."""
    p_upper_hemisphere: float = 0.5
    """Probability that a random static camera is a uniform direction on the upper hemisphere."""
    polar_range_deg: tuple[float, float] = (45.0, 135.0)
    """Polar range of the other random static cameras."""
    azimuth_range_deg: tuple[float, float] = (-180.0, 180.0)
    """Azimuth range of random cameras."""
    dynamic_delta_polar_deg: float = 45.0
    """A moving camera's polar changes by up to +- this over a clip."""
    dynamic_delta_azimuth_deg: float = 90.0
    """A moving camera's azimuth changes by up to +- this over a clip."""


@dataclass
class Cameras:
    """A batch of B pinhole cameras looking at the origin."""

    c2w: Tensor  # [B, 4, 4] camera-to-world, OpenGL axes (x right, y up, z back)
    fov_y_deg: Tensor  # [B]
    polar_deg: Tensor  # [B]
    azimuth_deg: Tensor  # [B], wrapped to [-180, 180)
    radius: Tensor  # [B]

    def __len__(self) -> int:
        return int(self.c2w.shape[0])

    @property
    def positions(self) -> Tensor:  # [B, 3]
        return self.c2w[:, :3, 3]

    def to(self, device: torch.device | str) -> Cameras:
        return Cameras(
            *(getattr(self, f).to(device) for f in ("c2w", "fov_y_deg", "polar_deg", "azimuth_deg", "radius"))
        )

    def __getitem__(self, index: int | slice | Tensor) -> Cameras:
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(
            self.c2w[index], self.fov_y_deg[index], self.polar_deg[index], self.azimuth_deg[index], self.radius[index]
        )

    def focal_px(self, height: int) -> Tensor:  # [B]
        """Focal length in pixels for an image `height` pixels tall (square pixels)."""
        return 0.5 * height / torch.tan(torch.deg2rad(self.fov_y_deg) / 2)


def wrap_degrees(angle: Tensor) -> Tensor:
    """Wrap to [-180, 180)."""
    return torch.remainder(angle + 180.0, 360.0) - 180.0


def spherical_to_position(polar_deg: Tensor, azimuth_deg: Tensor, radius: Tensor) -> Tensor:  # [B, 3]
    polar, azimuth = torch.deg2rad(polar_deg), torch.deg2rad(azimuth_deg)
    return torch.stack(
        [
            radius * torch.sin(polar) * torch.sin(azimuth),
            radius * torch.cos(polar),
            radius * torch.sin(polar) * torch.cos(azimuth),
        ],
        dim=-1,
    )


def look_at_origin(position: Tensor) -> Tensor:  # [B, 3] -> [B, 4, 4]
    """Camera-to-world matrices with det +1 for cameras at `position` looking at the origin, world up +y."""
    forward = -torch.nn.functional.normalize(position, dim=-1)
    world_up = torch.tensor([0.0, 1.0, 0.0], dtype=position.dtype, device=position.device).expand_as(forward)
    right = torch.nn.functional.normalize(torch.cross(forward, world_up, dim=-1), dim=-1)
    up = torch.cross(right, forward, dim=-1)
    c2w = torch.zeros(position.shape[0], 4, 4, dtype=position.dtype, device=position.device)
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2], c2w[:, :3, 3] = right, up, -forward, position
    c2w[:, 3, 3] = 1.0
    return c2w


def _as_batch(value: float | Tensor, n: int | None = None) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.float32)
    if t.dim() == 0:
        t = t.reshape(1)
    if n is not None and t.shape[0] == 1 and n > 1:
        t = t.expand(n)
    return t.float()


def make_cameras(
    polar_deg: float | Tensor,
    azimuth_deg: float | Tensor,
    radius: float | Tensor = 1.8,
    fov_y_deg: float | Tensor = 40.0,
) -> Cameras:
    """Cameras on the sphere; scalars broadcast against tensors [B]. Validates every value."""
    polar, azimuth = _as_batch(polar_deg), _as_batch(azimuth_deg)
    n = max(polar.shape[0], azimuth.shape[0], _as_batch(radius).shape[0], _as_batch(fov_y_deg).shape[0])
    polar, azimuth, radius_t, fov = (_as_batch(v, n) for v in (polar_deg, azimuth_deg, radius, fov_y_deg))
    for name, value in (("polar_deg", polar), ("azimuth_deg", azimuth), ("radius", radius_t), ("fov_y_deg", fov)):
        if value.shape[0] != n:
            raise ValueError(f"{name} has {value.shape[0]} entries but the batch has {n}; pass one value or {n}.")
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} contains non-finite values: {value.tolist()}")
    if (radius_t <= 0).any():
        raise ValueError(
            f"Camera radius must be > 0 (the camera orbits the object at the origin), got {radius_t.tolist()}"
        )
    if ((fov <= 0) | (fov >= 180)).any():
        raise ValueError(f"fov_y_deg must lie in (0, 180) degrees, got {fov.tolist()}")
    if ((polar < 0) | (polar > 180)).any():
        raise ValueError(f"polar_deg is measured from +y and must lie in [0, 180], got {polar.tolist()}")
    polar = polar.clamp(_POLE_EPS_DEG, 180.0 - _POLE_EPS_DEG)
    azimuth = wrap_degrees(azimuth)
    c2w = look_at_origin(spherical_to_position(polar, azimuth, radius_t))
    return Cameras(c2w, fov.clone(), polar, azimuth, radius_t.clone())


def reference_camera(config: CameraConfig = CameraConfig()) -> Cameras:
    """The view of the input image: (0, 0, 1.8) looking at the origin with the defaults."""
    return make_cameras(config.reference_polar_deg, config.reference_azimuth_deg, config.radius, config.fov_y_deg)


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def sample_static_angles(
    n: int, config: CameraConfig = CameraConfig(), generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """(polar, azimuth) of random static cameras: half uniform on the upper hemisphere, half in a polar band."""
    upper = torch.rand(n, generator=generator) < config.p_upper_hemisphere
    # Uniform direction on the upper hemisphere: cos(polar) ~ U[0, 1].
    polar_upper = torch.rad2deg(torch.acos(torch.rand(n, generator=generator)))
    polar_band = _uniform(n, *config.polar_range_deg, generator)
    azimuth = _uniform(n, *config.azimuth_range_deg, generator)
    return torch.where(upper, polar_upper, polar_band), azimuth


def sample_static_cameras(
    n: int, config: CameraConfig = CameraConfig(), generator: torch.Generator | None = None
) -> Cameras:
    polar, azimuth = sample_static_angles(n, config, generator)
    return make_cameras(polar, azimuth, config.radius, config.fov_y_deg)


def sample_dynamic_cameras(
    num_frames: int, config: CameraConfig = CameraConfig(), generator: torch.Generator | None = None
) -> Cameras:
    """A camera moving over a clip: frame f of F uses start + (f / F) * delta (SPEC 2)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    polar0, azimuth0 = sample_static_angles(1, config, generator)
    d_polar = _uniform(1, -config.dynamic_delta_polar_deg, config.dynamic_delta_polar_deg, generator)
    d_azimuth = _uniform(1, -config.dynamic_delta_azimuth_deg, config.dynamic_delta_azimuth_deg, generator)
    frac = torch.arange(num_frames, dtype=torch.float32) / num_frames
    polar = (polar0 + frac * d_polar).clamp(0.0, 180.0)
    return make_cameras(polar, azimuth0 + frac * d_azimuth, config.radius, config.fov_y_deg)


def static_camera_clip(
    num_frames: int, config: CameraConfig = CameraConfig(), generator: torch.Generator | None = None
) -> Cameras:
    """One random static camera repeated for every frame of a clip."""
    polar, azimuth = sample_static_angles(1, config, generator)
    return make_cameras(polar.expand(num_frames), azimuth.expand(num_frames), config.radius, config.fov_y_deg)


def orbit_cameras(
    num_views: int,
    polar_deg: float = 90.0,
    radius: float = 1.8,
    fov_y_deg: float = 40.0,
    start_azimuth_deg: float = 0.0,
) -> Cameras:
    """`num_views` cameras at azimuth start + 360 i / N, in order (the test orbit of SPEC 10)."""
    if num_views < 1:
        raise ValueError(f"num_views must be >= 1, got {num_views}")
    azimuth = start_azimuth_deg + 360.0 * torch.arange(num_views, dtype=torch.float32) / num_views
    return make_cameras(polar_deg, azimuth, radius, fov_y_deg)


def angle_from_reference_deg(cameras: Cameras, config: CameraConfig = CameraConfig()) -> Tensor:  # [B]
    """Angle between each camera's direction and the reference camera's (weights Zero123 SDS, SPEC 5)."""
    ref = spherical_to_position(
        _as_batch(config.reference_polar_deg), _as_batch(config.reference_azimuth_deg), _as_batch(1.0)
    ).to(cameras.c2w)
    cos = (torch.nn.functional.normalize(cameras.positions, dim=-1) * ref).sum(-1).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos))


__all__ = [
    "CameraConfig",
    "Cameras",
    "angle_from_reference_deg",
    "look_at_origin",
    "make_cameras",
    "orbit_cameras",
    "reference_camera",
    "sample_dynamic_cameras",
    "sample_static_cameras",
    "spherical_to_position",
    "static_camera_clip",
    "wrap_degrees",
]
