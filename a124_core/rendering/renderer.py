"""Render a field along rays or from cameras (SPEC 4).

The field is anything with `forward(x [N, 3], t) -> (density [N], albedo [N, 3])` and `density(x, t)`;
renderer and field stay apart. Empty samples (outside the box or in unoccupied cells) are never evaluated.
Frames are rendered in ray chunks, so a 1024x1024 frame needs no more memory than `chunk_rays` rays.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.utils.checkpoint
from torch import Tensor

from ..cameras import Cameras
from ..rays import Rays, camera_rays
from .occupancy import OccupancyGrid
from .volume import SHADING_MODES, deltas_of, importance_depths, render_weights, shade, stratified_depths


@dataclass(frozen=True)
class RenderConfig:
    """Ray-marching settings."""

    num_samples: int = 64
    """Stratified samples per ray."""
    num_importance: int = 32
    """Extra samples per ray drawn from the coarse weights (0 disables the second pass)."""
    bound: float = 1.0
    """Scene box [-bound, bound]^3."""
    min_near: float = 0.2
    """Rays start at least this far from the camera."""
    normal_eps: float = 1e-2
    """Finite-difference step of density-gradient normals."""
    normal_differences: str = "central"
    """'central': (density(x + eps e_i) - density(x - eps e_i)) / (2 eps), 6 probes per sample; 'forward':
    (density(x + eps e_i) - density(x)) / eps from the sample's own density, 3 probes: half the normals' field
    evaluations, but one-sided (on a sharp analytic sphere 4 deg off central differences in the median, 9.5 at
    most; tests/rendering), so not the default."""
    normal_min_weight: float = 1e-5
    """Normals are evaluated only for samples whose render weight reaches this (0: every sample). A skipped sample
    (normal 0) moves its pixel's colour, normal image and orientation by at most its weight, so a ray by at most
    (samples per ray) x this (1e-3 at 96 samples); behind an opaque surface most samples are skipped."""
    chunk_rays: int = 16384
    """Rays rendered per chunk when rendering whole frames: one 128^2 training frame per chunk. Each chunk issues
    the same few hundred kernels, so 4096 made a coarse step launch-bound (20,000 kernels, ~half of its projected
    H100 time; 7,500 at 16384, BENCHMARKS.md); with the fused grid a chunk's backward holds little per sample."""
    checkpoint_field: bool = True
    """With gradients on, recompute the field's activations (the MLP's, and the grid corner indices and weights of
    the sample and its normal probes where the grid is the PyTorch composition) in the backward pass instead of
    storing them: 16 frames of 128^2 at paper settings hold under 1 GB instead of ~90 GB with the composition and
    six probes, for one more field forward."""

    def __post_init__(self) -> None:
        if self.normal_min_weight < 0:
            raise ValueError(f"normal_min_weight must be >= 0, got {self.normal_min_weight}")
        if self.normal_differences not in ("forward", "central"):
            raise ValueError(f"normal_differences must be 'forward' or 'central', got {self.normal_differences!r}")
        if self.num_samples < 1 or self.num_importance < 0 or self.chunk_rays < 1:
            raise ValueError(
                f"Need num_samples >= 1, num_importance >= 0, chunk_rays >= 1; got {self.num_samples}, "
                f"{self.num_importance}, {self.chunk_rays}"
            )


def density_normals(field, x: Tensor, t, eps: float, density: Tensor | None = None) -> Tensor:
    """Unit normals [N, 3] = -grad(density) by finite differences (works with any encoder backend): forward
    differences from `density` [N], the density at x, when it is given (3 probes per point), else central (6)."""
    offsets = torch.eye(3, device=x.device, dtype=x.dtype) * eps
    if density is not None:
        probes = (x[:, None] + offsets).reshape(-1, 3)
        grad = (field.density(probes, t).reshape(-1, 3) - density[:, None]) / eps
    else:
        probes = torch.cat([x[:, None] + offsets, x[:, None] - offsets], 1).reshape(-1, 3)
        d = field.density(probes, t).reshape(-1, 2, 3)
        grad = (d[:, 0] - d[:, 1]) / (2 * eps)
    return -torch.nn.functional.normalize(grad, dim=-1, eps=1e-12)


def light_directions(cameras: Cameras, generator: torch.Generator | None = None) -> Tensor:  # [B, 3]
    """DreamFusion light: normalize(camera position + N(0, I)), one noise vector for all B cameras.

    One draw per step, like the background: frames of a clip then share their light offset instead of strobing.
    """
    noise = torch.randn(3, generator=generator).to(cameras.positions)
    return torch.nn.functional.normalize(cameras.positions + noise, dim=-1)


def _sample_depths(field, rays: Rays, t, config: RenderConfig, occupancy, perturb: bool, generator) -> Tensor:
    depths = stratified_depths(rays.near, rays.far, config.num_samples, perturb, generator)
    if config.num_importance == 0:
        return depths
    with torch.no_grad():
        points = rays.origins[:, None] + rays.directions[:, None] * depths[..., None]
        flat_valid = _valid_samples(points, rays, t, occupancy).reshape(-1).nonzero().squeeze(-1)  # one sync
        density = torch.zeros_like(depths)
        if flat_valid.numel():
            d = field.density(points.reshape(-1, 3).index_select(0, flat_valid), t).to(density.dtype)
            density = density.reshape(-1).index_copy(0, flat_valid, d).reshape(depths.shape)
        weights = render_weights(density, deltas_of(depths, rays.far))
        mids = 0.5 * (depths[:, 1:] + depths[:, :-1])
        fine = importance_depths(mids, weights[:, 1:-1], config.num_importance, perturb, generator)
    return torch.sort(torch.cat([depths, fine], -1), -1).values


def _valid_samples(points: Tensor, rays: Rays, t, occupancy: OccupancyGrid | None) -> Tensor:  # [R, S] bool
    valid = (rays.far > rays.near)[:, None].expand(points.shape[:2])
    if occupancy is not None:
        valid = valid & occupancy.query(points.reshape(-1, 3), t).reshape(points.shape[:2])
    return valid


def _normal_samples(weights: Tensor, flat_valid: Tensor, min_weight: float) -> Tensor:
    """Indices [K] into the evaluated samples of those whose weight reaches `min_weight` (one host sync)."""
    return (weights.detach().reshape(-1).index_select(0, flat_valid) >= min_weight).nonzero().squeeze(-1)


def render_rays(
    field,
    rays: Rays,
    t: float | Tensor | None = None,
    config: RenderConfig = RenderConfig(),
    occupancy: OccupancyGrid | None = None,
    shading: str = "albedo",
    light_dir: Tensor | None = None,
    ambient: float | Tensor = 1.0,
    background: Tensor | None = None,
    perturb: bool = False,
    need_normals: bool = False,
    generator: torch.Generator | None = None,
    check_rays: bool = True,
    need_displacement: bool = False,
) -> dict[str, Tensor]:
    """Volume-render R rays at time t.

    Args:
        light_dir: [3] or [R, 3]; needed by lambertian / textureless shading.
        background: [3] or [R, 3] colour behind the object (default white).
        need_normals: also composite normals and the orientation term (always on for non-albedo shading).
        check_rays: reject non-finite rays (a host sync; render_cameras skips it: make_cameras validates poses).
        need_displacement: also composite the field's per-sample displacement (the field must have
            `forward_with_displacement(x, t) -> (density, albedo, displacement [N, 3])`, e.g. DeformationField).
    Returns:
        rgb [R, 3], opacity [R], depth [R], weights [R, S]; with normals also normal [R, 3] (sum of w n)
        and orientation [R] (sum of sg(w) max(n . d, 0)^2, DreamFusion's orientation loss per ray); with
        need_displacement also displacement [R, 3] (sum of w d, zero where the ray is empty).
    """
    if shading not in SHADING_MODES:
        raise ValueError(f"Unknown shading mode {shading!r}; expected one of {SHADING_MODES}")
    num_rays = len(rays)
    if num_rays == 0:
        raise ValueError("render_rays got an empty batch of rays")
    if check_rays and not (torch.isfinite(rays.origins).all() and torch.isfinite(rays.directions).all()):
        raise ValueError("Ray origins/directions contain non-finite values")
    need_normals = need_normals or shading != "albedo"
    if need_displacement and not hasattr(field, "forward_with_displacement"):
        raise ValueError(
            f"need_displacement needs a deformation field; {type(field).__name__} has no forward_with_displacement"
        )
    depths = _sample_depths(field, rays, t, config, occupancy, perturb, generator)
    points = rays.origins[:, None] + rays.directions[:, None] * depths[..., None]  # [R, S, 3]
    valid = _valid_samples(points, rays, t, occupancy)
    flat_valid = valid.reshape(-1).nonzero().squeeze(-1)
    x = points.reshape(-1, 3).index_select(0, flat_valid)
    num_samples = depths.shape[1]

    def scatter(values: Tensor, fill: float = 0.0) -> Tensor:
        full = values.new_full((num_rays * num_samples, *values.shape[1:]), fill)
        return full.index_copy(0, flat_valid, values).reshape(num_rays, num_samples, *values.shape[1:])

    bg = torch.ones(3, device=points.device) if background is None else background.to(points.device)
    if x.shape[0] == 0:  # nothing occupied along any ray: the background shows through
        zeros = depths.new_zeros(num_rays)
        out = {
            "rgb": bg.expand(num_rays, 3).float(),
            "opacity": zeros,
            "depth": zeros,
            "weights": torch.zeros_like(depths),
        }
        if need_normals:
            out.update(normal=depths.new_zeros(num_rays, 3), orientation=zeros)
        if need_displacement:
            out["displacement"] = depths.new_zeros(num_rays, 3)
        return out

    def evaluate(points: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        if need_displacement:
            return field.forward_with_displacement(points, t)
        density, albedo = field(points, t)
        return density, albedo, None

    def normals_at(points: Tensor, density: Tensor) -> Tensor:
        own = density if config.normal_differences == "forward" else None
        return density_normals(field, points, t, config.normal_eps, own).float()

    def run(fn, *args):
        if config.checkpoint_field and torch.is_grad_enabled():
            # the field draws no random numbers: no RNG state to stash and restore per call
            return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False, preserve_rng_state=False)
        return fn(*args)

    density, albedo, displacement = run(evaluate, x)
    weights = render_weights(scatter(density.float()), deltas_of(depths, rays.far))
    normals = None
    if need_normals:
        keep = _normal_samples(weights, flat_valid, config.normal_min_weight)
        normals = x.new_zeros(x.shape[0], 3, dtype=torch.float32)
        if keep.numel():
            found = run(normals_at, x.index_select(0, keep), density.index_select(0, keep))
            normals = normals.index_copy(0, keep, found)
    light = None
    if light_dir is not None:
        light = light_dir.to(x).reshape(-1, 3)
        if light.shape[0] == num_rays:
            light = light[:, None].expand(-1, num_samples, -1).reshape(-1, 3).index_select(0, flat_valid)
    colour = scatter(shade(albedo.float(), normals, shading, light, ambient))
    opacity = weights.sum(-1)
    out = {
        "rgb": (weights[..., None] * colour).sum(1) + (1 - opacity[:, None]) * bg.reshape(-1, 3),
        "opacity": opacity,
        "depth": (weights * depths).sum(-1),
        "weights": weights,
    }
    if displacement is not None:
        out["displacement"] = (weights[..., None] * scatter(displacement.float())).sum(1)
    if normals is not None:
        n = scatter(normals)
        out["normal"] = (weights[..., None] * n).sum(1)
        # The image the normal-smoothness losses see: (n + 1) / 2 under detached weights, so smoothing it shapes
        # normals only and never pulls opacity across the silhouette.
        out["normal_image"] = (weights.detach()[..., None] * (n + 1) / 2).sum(1)
        facing = (n * rays.directions[:, None]).sum(-1).clamp_min(0) ** 2
        out["orientation"] = (weights.detach() * facing).sum(-1)
    return out


def render_cameras(
    field,
    cameras: Cameras,
    height: int,
    width: int,
    times: Tensor | list[float] | None = None,
    config: RenderConfig = RenderConfig(),
    occupancy: OccupancyGrid | None = None,
    shading: str = "albedo",
    light_dirs: Tensor | None = None,
    ambient: float | Tensor = 1.0,
    background: Tensor | None = None,
    perturb: bool = False,
    need_normals: bool = False,
    generator: torch.Generator | None = None,
    need_displacement: bool = False,
) -> dict[str, Tensor]:
    """Render B cameras (camera b at time times[b]) in chunks; returns per-pixel maps [B, H, W, C].

    background: [3] for all frames or [B, 3], one colour per frame. light_dirs: [B, 3].
    need_displacement: also return "displacement" [B, H, W, 3] (see render_rays), the video the displacement
    TV loss reads.
    """
    if height < 1 or width < 1:
        raise ValueError(f"Resolution must be positive, got {height}x{width}")
    if times is not None and len(times) != len(cameras):
        raise ValueError(f"Got {len(times)} times for {len(cameras)} cameras; pass one time per camera")
    frames: list[dict[str, Tensor]] = []
    # A dynamic field blends its table once per frame for all frames at once (see Grid4DField.at_times).
    frame_fields = field.at_times(times) if times is not None and hasattr(field, "at_times") else None
    for b in range(len(cameras)):
        rays = camera_rays(cameras[b], height, width, config.bound, config.min_near)
        t = None if times is None else times[b]
        bg = None if background is None else (background[b] if background.dim() == 2 else background)
        light = None if light_dirs is None else light_dirs[b]
        chunks = [
            render_rays(
                field if frame_fields is None else frame_fields[b],
                rays[i : i + config.chunk_rays],
                t,
                config,
                occupancy,
                shading,
                light,
                ambient,
                bg,
                perturb,
                need_normals,
                generator,
                check_rays=False,
                need_displacement=need_displacement,
            )
            for i in range(0, len(rays), config.chunk_rays)
        ]
        frames.append({k: torch.cat([c[k] for c in chunks]) for k in chunks[0] if k != "weights"})
    out = {}
    for key in frames[0]:
        stacked = torch.stack([f[key] for f in frames])
        out[key] = stacked.reshape(len(cameras), height, width, -1)
    return out
