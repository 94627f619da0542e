"""Pure volume-rendering functions (nerfacc style): samples along rays, weights, accumulation, shading."""

from __future__ import annotations

import torch
from torch import Tensor

SHADING_MODES = ("albedo", "lambertian", "textureless", "normal")


def stratified_depths(near: Tensor, far: Tensor, num_samples: int, perturb: bool, generator=None) -> Tensor:
    """Sample distances [R, S] in [near, far]: bin centres, or one uniform draw per bin when perturbed."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    steps = torch.arange(num_samples, device=near.device, dtype=near.dtype)
    if perturb:
        u = torch.rand((near.shape[0], num_samples), generator=generator).to(near)
    else:
        u = torch.full((near.shape[0], num_samples), 0.5, device=near.device, dtype=near.dtype)
    frac = (steps[None] + u) / num_samples
    return near[:, None] + (far - near)[:, None] * frac


def importance_depths(bins: Tensor, weights: Tensor, num_samples: int, perturb: bool, generator=None) -> Tensor:
    """Inverse-CDF samples [R, num_samples] from piecewise-constant weights [R, B - 1] over bin edges [R, B]."""
    pdf = (weights + 1e-5) / (weights + 1e-5).sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)
    if perturb:
        u = torch.rand((cdf.shape[0], num_samples), generator=generator).to(cdf)
    else:
        u = torch.linspace(0.5 / num_samples, 1 - 0.5 / num_samples, num_samples, device=cdf.device).expand(
            cdf.shape[0], -1
        )
    u = u.contiguous()
    idx = torch.searchsorted(cdf.contiguous(), u, right=True).clamp(1, cdf.shape[-1] - 1)
    cdf0, cdf1 = cdf.gather(1, idx - 1), cdf.gather(1, idx)
    b0, b1 = bins.gather(1, idx - 1), bins.gather(1, idx)
    denom = torch.where(cdf1 - cdf0 < 1e-5, torch.ones_like(cdf0), cdf1 - cdf0)
    return b0 + (u - cdf0) / denom * (b1 - b0)


def deltas_of(depths: Tensor, far: Tensor) -> Tensor:
    """Segment lengths [R, S]; the last segment ends at the ray's far distance."""
    return torch.cat([depths[:, 1:] - depths[:, :-1], (far[:, None] - depths[:, -1:]).clamp_min(0)], -1).clamp_min(0)


def render_weights(density: Tensor, deltas: Tensor) -> Tensor:
    """w_i = alpha_i prod_{j<i} (1 - alpha_j) with alpha = 1 - exp(-sigma delta); [R, S]."""
    tau = density * deltas
    alpha = 1 - torch.exp(-tau)
    transmittance = torch.exp(-torch.cumsum(torch.cat([torch.zeros_like(tau[:, :1]), tau[:, :-1]], -1), -1))
    return alpha * transmittance


def shade(
    albedo: Tensor, normals: Tensor | None, mode: str, light_dir: Tensor | None, ambient: float | Tensor
) -> Tensor:
    """DreamFusion shading per sample: albedo [M, 3], normals [M, 3], light_dir [M, 3] -> colour [M, 3]."""
    if mode == "albedo":
        return albedo
    if normals is None:
        raise ValueError(f"Shading mode '{mode}' needs normals")
    if mode == "normal":
        return (normals + 1) / 2
    if light_dir is None:
        raise ValueError(f"Shading mode '{mode}' needs a light direction")
    ambient = torch.as_tensor(ambient, dtype=albedo.dtype, device=albedo.device)
    diffuse = (normals * light_dir).sum(-1, keepdim=True).clamp_min(0)
    light = ambient + (1 - ambient) * diffuse
    if mode == "textureless":
        return light.expand(-1, 3)
    if mode == "lambertian":
        return albedo * light
    raise ValueError(f"Unknown shading mode {mode!r}; expected one of {SHADING_MODES}")
