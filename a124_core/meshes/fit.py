"""Mesh -> canonical static field: fit a `StaticField` to a mesh so the dynamic stages can animate it.

Two supervised phases (no prior is involved, so this takes seconds to minutes where step 1 takes hours):
1. 3D targets. Random points, half uniform in the bound and half near the surface (surface samples moved along the
   normal by N(0, surface_band^2)). Density: log-density regressed onto inside_log_density / outside_log_density
   by the trilinear voxel occupancy (`inside.voxel_inside`), one-sided beyond those values. Albedo, near-surface
   points only: the colour of the surface sample they came from (for offsets below the local feature size that
   is the nearest surface point), looked up in the texture (barycentric UV + bilinear texel).
2. Photometric (optional): L2 of volume renders against exact mesh renders (`raster.render_mesh`) on random rays
   of random views, which moves the rendered surface onto the mesh's silhouette where the field's smooth density
   transition and the voxel targets put it a fraction of a cell off.
The result is a static `Scene` (stage 'static', occupancy grid refreshed), what the coarse stage expects from step 1.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from dataclasses import field as dfield

import torch
from torch import Tensor

from ..cameras import Cameras, make_cameras
from ..config_io import config_to_dict
from ..fields.static import FieldConfig, StaticField
from ..rays import camera_rays
from ..rendering.occupancy import OccupancyConfig, OccupancyGrid
from ..rendering.renderer import RenderConfig, render_cameras, render_rays
from ..training.scene import Scene
from .asset import MeshAsset
from .inside import grid_lookup, grid_volume, sample_volume, voxel_inside, winding_numbers
from .normalise import DEFAULT_RADIUS, MeshTransform, fit_transform
from .raster import render_mesh
from .surface import MeshSurface


@dataclass(frozen=True)
class MeshFitConfig:
    """How the canonical field is fitted to a mesh."""

    field: FieldConfig = dfield(default_factory=FieldConfig)
    """The static field (pass the static stage's, e.g. `preset(...).static.field`)."""
    occupancy: OccupancyConfig = dfield(default_factory=OccupancyConfig)
    """The scene's occupancy grid (pass the static stage's)."""
    render: RenderConfig = dfield(default_factory=RenderConfig)
    """Ray marching of the photometric phase."""
    steps: int = 500
    """Iterations of the 3D-target phase."""
    batch_points: int = 8192
    """Points per 3D-target iteration."""
    surface_fraction: float = 0.5
    """Share of those drawn near the surface (the rest uniform in the bound)."""
    surface_band: float = 0.02
    """Standard deviation of near-surface points' offset along the normal (scene units; the bound is 2 wide)."""
    voxel_resolution: int = 256
    """Voxels per axis of the inside/outside target (256: surface voxels count as inside, which widens the object
    by under one voxel, 0.008 scene units; about 3 s and 100 MB on a CPU)."""
    close_voxels: int = 2
    """Holes up to about twice this many voxels are closed for inside/outside."""
    inside_log_density: float = 5.0
    """Target log-density inside (density 148: opaque within 0.03 along a ray)."""
    outside_log_density: float = -7.0
    """Target log-density outside (density 9e-4: a ray across the whole bound loses < 0.4 % of its light)."""
    albedo_weight: float = 1.0
    """Weight of the albedo MSE relative to the log-density MSE (which is divided by its range squared)."""
    photometric_steps: int = 200
    """Iterations of the photometric phase (0 skips it)."""
    photometric_views: int = 24
    """Random views rendered from the mesh for it (polar 30-150 deg, any azimuth, radius 1.8)."""
    photometric_size: int = 64
    """Side of those renders."""
    photometric_rays: int = 2048
    """Rays per photometric iteration."""
    lr_scale: float = 3.0
    """Multiplies the field's Adam learning rates (grid 1e-2, MLP 1e-3): a supervised fit converges faster."""
    seed: int = 0
    """Seed of the point, view and ray draws."""
    surface_pool: int = 1 << 17
    """Surface samples (with their colours) drawn once and reused by every iteration."""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_points < 2 or self.photometric_steps < 0:
            raise ValueError(
                f"Need steps >= 1, batch_points >= 2, photometric_steps >= 0; got {self.steps}, "
                f"{self.batch_points}, {self.photometric_steps}"
            )
        if not 0.0 < self.surface_fraction < 1.0:
            raise ValueError(f"surface_fraction must lie in (0, 1), got {self.surface_fraction}")
        if not self.outside_log_density < self.inside_log_density:
            raise ValueError("outside_log_density must be below inside_log_density")


@dataclass
class MeshFitResult:
    """The fitted scene and how long each part took."""

    scene: Scene
    """Static scene: the field and its refreshed occupancy grid."""
    inside: Tensor
    """[R, R, R] bool voxel occupancy the density was fitted to (indexed [x, y, z])."""
    seconds: dict[str, float]
    """Wall time of 'voxels', 'fit_3d', 'photometric' and 'total'."""
    surface: MeshSurface
    """The mesh in scene coordinates (renders, colours, evaluation)."""
    config: MeshFitConfig
    """How it was fitted."""
    transform: MeshTransform | None = None
    """File -> scene transform (set by `scene_from_mesh`; also in the scene's stage_config)."""


def _one_sided_error(pred: Tensor, target: Tensor, lo: float, hi: float) -> Tensor:
    """pred - target, but no penalty for overshooting a saturated target (denser than inside, emptier than outside)."""
    err = pred - target
    err = torch.where(target >= hi, err.clamp_max(0), err)
    return torch.where(target <= lo, err.clamp_min(0), err)


def _random_views(n: int, generator: torch.Generator) -> Cameras:
    polar = 30 + 120 * torch.rand(n, generator=generator)
    azimuth = 360 * torch.rand(n, generator=generator) - 180
    return make_cameras(polar, azimuth)


class _Targets:
    """The 3D-target loss: voxel occupancy for density everywhere, surface colour near the surface."""

    def __init__(self, surface: MeshSurface, inside: Tensor, config: MeshFitConfig, generator: torch.Generator):
        self.config, self.generator = config, generator
        self.occupancy = grid_volume(inside)  # prepared once: the grid holds up to 256^3 voxels
        self.points, self.normals, face, bary = surface.sample(config.surface_pool, generator)
        self.colour = surface.colour(face, bary)
        self.n_surface = int(config.batch_points * config.surface_fraction)

    def loss(self, model: StaticField) -> Tensor:
        c, g, device = self.config, self.generator, self.points.device
        bound, lo, hi = c.field.grid.bound, c.outside_log_density, c.inside_log_density
        pick = torch.randint(0, c.surface_pool, (self.n_surface,), generator=g).to(device)
        offset = torch.randn(self.n_surface, 1, generator=g).to(device) * c.surface_band
        near = self.points[pick] + self.normals[pick] * offset
        uniform = (torch.rand(c.batch_points - self.n_surface, 3, generator=g).to(device) * 2 - 1) * bound
        x = torch.cat([near, uniform]).clamp(-bound, bound)
        density, albedo = model(x)
        target = lo + (hi - lo) * sample_volume(self.occupancy, x, bound)
        err = _one_sided_error(torch.log(density.clamp_min(1e-30)), target, lo, hi) / (hi - lo)
        colour_err = albedo[: self.n_surface] - self.colour[pick]
        return (err**2).mean() + c.albedo_weight * (colour_err**2).mean()


def _adam(model: StaticField, lr_scale: float) -> torch.optim.Adam:
    groups = model.parameter_groups()
    for group in groups:
        group["lr"] *= lr_scale
    return torch.optim.Adam(groups, betas=(0.9, 0.99), eps=1e-15)


def fit_field_to_mesh(surface: MeshSurface, config: MeshFitConfig = MeshFitConfig()) -> MeshFitResult:
    """Fit a fresh StaticField to `surface` (scene coordinates, inside the bound) and return it as a static scene."""
    device = surface.vertices.device
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    bound = config.field.grid.bound
    inside, _ = voxel_inside(surface.triangles, config.voxel_resolution, bound, config.close_voxels)
    inside_t = torch.as_tensor(inside, device=device)
    targets = _Targets(surface, inside_t, config, generator)
    seconds = {"voxels": time.perf_counter() - start}

    model = StaticField(config.field).to(device)
    optimizer = _adam(model, config.lr_scale)
    t0 = time.perf_counter()
    for _ in range(config.steps):
        loss = targets.loss(model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    seconds["fit_3d"] = time.perf_counter() - t0

    occupancy = OccupancyGrid(config.occupancy, 1, bound).to(device)
    t0 = time.perf_counter()
    if config.photometric_steps:
        _photometric(model, occupancy, surface, targets, config, generator)
    seconds["photometric"] = time.perf_counter() - t0
    occupancy.refresh(lambda x, t: model.density(x, t), generator=generator)
    seconds["total"] = time.perf_counter() - start
    stage_config = {"source": "mesh", "mesh_fit": config_to_dict(config)}
    scene = Scene(model, occupancy, "static", config.steps + config.photometric_steps, True, stage_config)
    return MeshFitResult(scene, inside_t, seconds, surface, config)


def scene_from_mesh(
    asset: MeshAsset, config: MeshFitConfig = MeshFitConfig(), radius: float = DEFAULT_RADIUS, device="cpu"
) -> MeshFitResult:
    """Normalise a loaded mesh into the bound and fit the canonical field to it; the transform goes into the
    scene's stage_config ('mesh_transform') so a saved scene can still be written back onto the file."""
    transform = fit_transform(asset.vertices, asset.faces, radius)
    result = fit_field_to_mesh(MeshSurface.from_asset(asset, transform, device), config)
    result.scene.stage_config["mesh_transform"] = transform.to_dict()
    result.transform = transform
    return result


def _photometric(
    model: StaticField,
    occupancy: OccupancyGrid,
    surface: MeshSurface,
    targets: _Targets,
    config: MeshFitConfig,
    generator,
) -> None:
    """Ray L2 against exact mesh renders, with the 3D targets kept as a regulariser of what no view sees well."""
    size = config.photometric_size
    views = _random_views(config.photometric_views, generator).to(surface.vertices.device)
    colours = render_mesh(surface, views, size, size)["rgb"].reshape(-1, 3)
    rays = camera_rays(views, size, size, config.render.bound, config.render.min_near)
    optimizer = _adam(model, config.lr_scale)
    for step in range(config.photometric_steps):
        if step % 16 == 0:
            occupancy.refresh(lambda x, t: model.density(x, t), generator=generator)
        idx = torch.randint(0, len(rays), (config.photometric_rays,), generator=generator).to(colours.device)
        out = render_rays(model, rays[idx], None, config.render, occupancy, perturb=True, generator=generator)
        loss = ((out["rgb"] - colours[idx]) ** 2).mean() + targets.loss(model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


@dataclass
class FitReport:
    """How close the fitted field is to the mesh."""

    psnr: float
    """Mean PSNR (dB) of the field's albedo renders against the exact mesh renders over the given views."""
    iou: float
    """Occupancy IoU of the field (log-density above the midpoint of the targets) vs winding number > 0.5."""
    voxel_iou: float
    """The same IoU for the voxel target itself (the best the density fit can reach)."""
    per_view_psnr: list[float] = dfield(default_factory=list)
    """PSNR of each view."""


@torch.no_grad()
def evaluate_fit(
    result: MeshFitResult,
    cameras: Cameras,
    size: int,
    render: RenderConfig = RenderConfig(),
    num_points: int = 20000,
    seed: int = 1,
) -> FitReport:
    """PSNR at `cameras` and occupancy IoU at random points of the object's bounding box (O(points x faces))."""
    scene, surface, config = result.scene, result.surface, result.config
    pred = render_cameras(scene.field, cameras, size, size, config=render, occupancy=scene.occupancy)["rgb"]
    gt = render_mesh(surface, cameras, size, size)["rgb"]
    per_view = [float(-10 * torch.log10(((p - g) ** 2).mean().clamp_min(1e-10))) for p, g in zip(pred, gt)]
    generator = torch.Generator().manual_seed(seed)
    lo, hi = surface.vertices.min(0).values, surface.vertices.max(0).values
    margin = 0.1 * (hi - lo).max()
    points = lo - margin + torch.rand(num_points, 3, generator=generator).to(lo) * (hi - lo + 2 * margin)
    truth = winding_numbers(points, surface.triangles) > 0.5
    level = math.exp((config.inside_log_density + config.outside_log_density) / 2)
    fitted = scene.field.density(points) > level
    voxel = grid_lookup(result.inside.float(), points, config.field.grid.bound) > 0.5
    return FitReport(sum(per_view) / len(per_view), _iou(fitted, truth), _iou(voxel, truth), per_view)


def _iou(a: Tensor, b: Tensor) -> float:
    return float((a & b).sum()) / max(1.0, float((a | b).sum()))


__all__ = ["FitReport", "MeshFitConfig", "MeshFitResult", "evaluate_fit", "fit_field_to_mesh", "scene_from_mesh"]
