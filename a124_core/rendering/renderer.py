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
from .volume import SHADING_MODES, importance_depths, shade, stratified_depths


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
    chunk_rays: int = 262144
    """Rays rendered per call when rendering whole frames: a chunk spans frames (16 training frames of 128^2 in one
    call). Each call issues the same few hundred kernels and host syncs however many rays it has, so one call per
    frame (16384) left a coarse step launch-bound (BENCHMARKS.md); with the fused field ops and the packed
    compositing a call's backward holds little per sample (estimate_gpu.py counts it)."""
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
    differences from `density` [N], the density at x, when it is given (3 probes per point), else central (6).
    t: one time, or one per point [N]."""
    offsets = torch.eye(3, device=x.device, dtype=x.dtype) * eps
    if density is not None:
        probes = (x[:, None] + offsets).reshape(-1, 3)
        grad = (field.density(probes, _repeat(t, 3)).reshape(-1, 3) - density[:, None]) / eps
    else:
        # x + (-eps e_i) is x - eps e_i exactly: the 6 probes in one broadcast add, no concatenation
        probes = (x[:, None] + torch.cat([offsets, -offsets])).reshape(-1, 3)
        d = field.density(probes, _repeat(t, 6)).reshape(-1, 2, 3)
        grad = (d[:, 0] - d[:, 1]) / (2 * eps)
    return -torch.nn.functional.normalize(grad, dim=-1, eps=1e-12)


def light_directions(cameras: Cameras, generator: torch.Generator | None = None) -> Tensor:  # [B, 3]
    """DreamFusion light: normalize(camera position + N(0, I)), one noise vector for all B cameras.

    One draw per step, like the background: frames of a clip then share their light offset instead of strobing.
    """
    noise = torch.randn(3, generator=generator).to(cameras.positions)
    return torch.nn.functional.normalize(cameras.positions + noise, dim=-1)


def _per_ray(t) -> bool:
    """Whether t holds one time per ray (a batch of frames) rather than one time for all."""
    return torch.is_tensor(t) and t.dim() == 1 and t.numel() > 1


def _repeat(t, times: int):
    """Per-point times repeated for `times` consecutive points each (probes); one time stays one time."""
    return t.repeat_interleave(times) if _per_ray(t) else t


def _at(t, index: Tensor):
    """The times of the points `index` selects: per-ray (or per-point) times gathered, one time kept."""
    return t.index_select(0, index) if _per_ray(t) else t


def _sample_depths(field, rays: Rays, t, config: RenderConfig, occupancy, perturb: bool, generator
                   ) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Stratified (and importance) depths [R, S] along the rays, sorted, and which slots are valid [R, S]: each
    depth's occupancy is queried once, the stratified ones' for both passes (one host sync)."""
    depths = stratified_depths(rays.near, rays.far, config.num_samples, perturb, generator)
    valid = _valid_slots(rays, depths, t, occupancy)
    if config.num_importance == 0:
        return depths, valid
    with torch.no_grad():
        samples = _packed(rays, depths, valid)
        weights = depths.new_zeros(depths.shape)
        if samples.x.shape[0]:
            density = field.density(samples.x, _at(t, samples.ray)).to(depths.dtype)
            weights = samples.scatter(samples.weights(density, rays.far))
        mids = 0.5 * (depths[:, 1:] + depths[:, :-1])
        fine = importance_depths(mids, weights[:, 1:-1], config.num_importance, perturb, generator)
    depths, order = torch.sort(torch.cat([depths, fine], -1), -1)
    # a slot's validity depends on its depth only: the sorted slots take theirs along
    return depths, torch.cat([valid, _valid_slots(rays, fine, t, occupancy)], -1).gather(1, order)


def _valid_slots(rays: Rays, depths: Tensor, t, occupancy: OccupancyGrid | None) -> Tensor:  # [R, S] bool
    """Which slots of the rays at `depths` [R, S] are evaluated: the ray crosses the box and the slot's cell is
    occupied at the ray's time."""
    valid = (rays.far > rays.near)[:, None].expand(depths.shape)
    if occupancy is not None:
        points = rays.origins[:, None] + rays.directions[:, None] * depths[..., None]  # [R, S, 3]
        valid = valid & occupancy.query_rays(points, t)
    return valid


def _normal_samples(weights: Tensor, min_weight: float) -> Tensor:
    """Indices [K'] into the evaluated samples of those whose weight [K] reaches `min_weight` (one host sync)."""
    return (weights.detach() >= min_weight).nonzero().squeeze(-1)


@dataclass
class _Samples:
    """The samples of R rays: depths [R, S], the indices [K] of the evaluated (valid) ones among the R * S, their
    rays [K], depths [K] and points x [K, 3]. Everything per sample after the field is computed on the K valid
    samples only (packed, ~18 % of the slots of a training frame), the per-ray transmittance scan included."""

    depths: Tensor
    flat_valid: Tensor
    x: Tensor
    ray: Tensor  # [K] the ray of each valid sample (non-decreasing: flat_valid is sorted)
    depth: Tensor  # [K] the depth of each valid sample

    def scatter(self, values: Tensor, fill: float = 0.0) -> Tensor:
        """Per-sample values [K, ...] of the valid samples -> [R, S, ...] (`fill` elsewhere)."""
        rays, slots = self.depths.shape
        full = values.new_full((rays * slots, *values.shape[1:]), fill)
        return full.index_copy(0, self.flat_valid, values).reshape(rays, slots, *values.shape[1:])

    def deltas(self, far: Tensor) -> Tensor:
        """Segment lengths [K] of the valid samples, `volume.deltas_of` at their slots: to the ray's next slot
        (valid or not), or to the ray's far distance from its last slot."""
        slots = self.depths.shape[1]
        flat = self.depths.reshape(-1)
        following = flat.index_select(0, (self.flat_valid + 1).clamp_max(flat.numel() - 1))
        last = self.flat_valid % slots == slots - 1
        return (torch.where(last, far.index_select(0, self.ray), following) - self.depth).clamp_min(0)

    def weights(self, density: Tensor, far: Tensor) -> Tensor:
        """Render weights [K] of the valid samples: alpha_i T_i, T_i = exp(-sum_{j<i} sigma_j delta_j) over the
        ray's valid samples (the empty slots have sigma = 0: they add nothing to the sum).

        The exclusive per-ray sum is a float64 running sum over all K packed samples (ray-major) minus its value at
        the ray's first sample: float64 keeps a ray's sum exact to ~1e-16 of the running total (float32 over
        millions of samples would not)."""
        tau = density * self.deltas(far)
        tau64 = tau.double()
        running = torch.cumsum(tau64, 0) - tau64  # exclusive over all rays
        first = torch.searchsorted(self.ray, self.ray)  # each sample's ray's first sample
        exclusive = (running - running.index_select(0, first)).float()
        return (1 - torch.exp(-tau)) * torch.exp(-exclusive)


def _packed(rays: Rays, depths: Tensor, valid: Tensor) -> _Samples:
    """The valid samples among the slots `depths` [R, S] (one host sync): their points are computed for them only,
    with the same float ops as for all slots."""
    flat_valid = valid.reshape(-1).nonzero().squeeze(-1)
    ray = torch.div(flat_valid, depths.shape[1], rounding_mode="floor")
    depth = depths.reshape(-1).index_select(0, flat_valid)
    x = rays.origins.index_select(0, ray) + rays.directions.index_select(0, ray) * depth[:, None]
    return _Samples(depths, flat_valid, x, ray, depth)


def _march(field, rays: Rays, t, config: RenderConfig, occupancy, perturb: bool, generator) -> _Samples:
    """Stratified (and importance) depths along the rays and the samples the field must evaluate (one host sync
    each)."""
    return _packed(rays, *_sample_depths(field, rays, t, config, occupancy, perturb, generator))


def _empty(depths: Tensor, bg: Tensor, need_normals: bool, need_displacement: bool, need_weights: bool
           ) -> dict[str, Tensor]:  # fmt: skip
    """Nothing occupied along any ray: the background shows through."""
    num_rays = depths.shape[0]
    zeros = depths.new_zeros(num_rays)
    out = {"rgb": bg.expand(num_rays, 3).float(), "opacity": zeros, "depth": zeros}
    if need_weights:
        out["weights"] = torch.zeros_like(depths)
    if need_normals:
        out.update(normal=depths.new_zeros(num_rays, 3), orientation=zeros)
    if need_displacement:
        out["displacement"] = depths.new_zeros(num_rays, 3)
    return out


def _checkpointed(config: RenderConfig, fn, *args):
    """fn(*args), recomputed in the backward instead of stored when `config.checkpoint_field` and grad is on."""
    if config.checkpoint_field and torch.is_grad_enabled():
        # the field draws no random numbers: no RNG state to stash and restore per call
        return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False, preserve_rng_state=False)
    return fn(*args)


def _sample_normals(field, samples: _Samples, t, density: Tensor, weights: Tensor, config: RenderConfig) -> Tensor:
    """Normals [K, 3] of the valid samples whose render weight reaches `normal_min_weight` (0 for the others); t is
    one time or the valid samples' times [K]."""
    x = samples.x
    keep = _normal_samples(weights, config.normal_min_weight)
    normals = x.new_zeros(x.shape[0], 3, dtype=torch.float32)
    if not keep.numel():
        return normals

    def normals_at(points: Tensor, density: Tensor) -> Tensor:
        own = density if config.normal_differences == "forward" else None
        return density_normals(field, points, t, config.normal_eps, own).float()

    t = _at(t, keep)
    found = _checkpointed(config, normals_at, x.index_select(0, keep), density.index_select(0, keep))
    return normals.index_copy(0, keep, found)


def _composite(samples: _Samples, weights: Tensor, colour: Tensor, bg: Tensor, rays: Rays, normals: Tensor | None,
               displacement: Tensor | None) -> dict[str, Tensor]:  # fmt: skip
    """Per-ray maps from the valid samples' weights [K] and colours [K, 3] (and normals, displacements [K, 3]): every
    map summed over each ray's samples in one index_add."""
    w = weights[:, None]
    columns = {"rgb": w * colour, "opacity": w, "depth": w * samples.depth[:, None]}
    if displacement is not None:
        columns["displacement"] = w * displacement.float()
    if normals is not None:
        columns["normal"] = w * normals
        # The image the normal-smoothness losses see: (n + 1) / 2 under detached weights, so smoothing it shapes
        # normals only and never pulls opacity across the silhouette.
        columns["normal_image"] = w.detach() * (normals + 1) / 2
        facing = (normals * rays.directions.index_select(0, samples.ray)).sum(-1, keepdim=True).clamp_min(0) ** 2
        columns["orientation"] = w.detach() * facing
    stacked = torch.cat(list(columns.values()), 1)
    sums = stacked.new_zeros(len(rays), stacked.shape[1]).index_add(0, samples.ray, stacked)
    out, start = {}, 0
    for name, value in columns.items():
        out[name] = sums[:, start : start + value.shape[1]]
        start += value.shape[1]
    for name in ("opacity", "depth", "orientation"):
        if name in out:
            out[name] = out[name][:, 0]
    out["rgb"] = out["rgb"] + (1 - out["opacity"][:, None]) * bg.reshape(-1, 3)
    return out


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
    need_weights: bool = False,
) -> dict[str, Tensor]:
    """Volume-render R rays at time t (one time, or one per ray [R]: several frames in one call).

    Args:
        light_dir: [3] or [R, 3]; needed by lambertian / textureless shading.
        background: [3] or [R, 3] colour behind the object (default white).
        need_normals: also composite normals and the orientation term (always on for non-albedo shading).
        check_rays: reject non-finite rays (a host sync; render_cameras skips it: make_cameras validates poses).
        need_displacement: also composite the field's per-sample displacement (the field must have
            `forward_with_displacement(x, t) -> (density, albedo, displacement [N, 3])`, e.g. DeformationField).
        need_weights: also return every slot's render weight, weights [R, S] (0 where no sample was evaluated):
            a dense map of all slots, so off by default and never in training renders.
    Returns:
        rgb [R, 3], opacity [R], depth [R]; with normals also normal [R, 3] (sum of w n) and orientation [R]
        (sum of sg(w) max(n . d, 0)^2, DreamFusion's orientation loss per ray); with need_displacement also
        displacement [R, 3] (sum of w d, zero where the ray is empty); with need_weights also weights [R, S].
    """
    if shading not in SHADING_MODES:
        raise ValueError(f"Unknown shading mode {shading!r}; expected one of {SHADING_MODES}")
    if len(rays) == 0:
        raise ValueError("render_rays got an empty batch of rays")
    if check_rays and not (torch.isfinite(rays.origins).all() and torch.isfinite(rays.directions).all()):
        raise ValueError("Ray origins/directions contain non-finite values")
    need_normals = need_normals or shading != "albedo"
    if need_displacement and not hasattr(field, "forward_with_displacement"):
        raise ValueError(
            f"need_displacement needs a deformation field; {type(field).__name__} has no forward_with_displacement"
        )
    samples = _march(field, rays, t, config, occupancy, perturb, generator)
    bg = torch.ones(3, device=samples.depths.device) if background is None else background.to(samples.depths.device)
    if samples.x.shape[0] == 0:
        return _empty(samples.depths, bg, need_normals, need_displacement, need_weights)

    t = _at(t, samples.ray)  # per-ray times -> the valid samples' times

    def evaluate(points: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        if need_displacement:
            return field.forward_with_displacement(points, t)
        density, albedo = field(points, t)
        return density, albedo, None

    density, albedo, displacement = _checkpointed(config, evaluate, samples.x)
    weights = samples.weights(density.float(), rays.far)
    normals = _sample_normals(field, samples, t, density, weights, config) if need_normals else None
    light = None
    if light_dir is not None:
        light = light_dir.to(samples.x).reshape(-1, 3)
        if light.shape[0] == len(rays):  # one light per ray: one per valid sample
            light = light.index_select(0, samples.ray)
    colour = shade(albedo.float(), normals, shading, light, ambient)
    out = _composite(samples, weights, colour, bg, rays, normals, displacement)
    if need_weights:
        out["weights"] = samples.scatter(weights)
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
    # All frames' rays in one batch (chunks of `chunk_rays` rays span frames): each render issues its kernels and
    # host syncs once for many frames. Ray r of frame b carries the frame's time, background and light.
    rays = camera_rays(cameras, height, width, config.bound, config.min_near)
    pixels = height * width
    t = None
    if times is not None:  # one frame: its one time; several: one time per ray
        t = times[0] if len(cameras) == 1 else _per_ray_values(torch.as_tensor(times, dtype=torch.float32), pixels)
        t = t.to(rays.origins.device) if torch.is_tensor(t) else t
    bg = background if background is None or background.dim() == 1 else _per_ray_values(background, pixels)
    light = None if light_dirs is None else _per_ray_values(light_dirs, pixels)
    # A dynamic field blends its tables once per frame for all frames (Grid4DField.frames_at); points carry their time.
    frames_field = field.frames_at(times) if times is not None and hasattr(field, "frames_at") else field
    chunks = []
    for i in range(0, len(rays), config.chunk_rays):
        part = slice(i, i + config.chunk_rays)
        chunks.append(
            render_rays(
                frames_field,
                rays[part],
                t[part] if torch.is_tensor(t) and t.dim() == 1 else t,
                config,
                occupancy,
                shading,
                None if light is None else light[part],
                ambient,
                bg if bg is None or bg.dim() == 1 else bg[part],
                perturb,
                need_normals,
                generator,
                check_rays=False,
                need_displacement=need_displacement,
            )
        )
    return {key: torch.cat([c[key] for c in chunks]).reshape(len(cameras), height, width, -1) for key in chunks[0]}


def _per_ray_values(values: Tensor, pixels: int) -> Tensor:
    """Per-frame values [B, ...] -> one per ray of B frames of `pixels` rays each [B * pixels, ...]."""
    return values.repeat_interleave(pixels, dim=0)
