"""Multi-view score distillation with MVDream's x0-reconstruction loss (MVDream Sec. 3.2; Dream-in-4D's L_3D).

Renders of view groups (N views of one object each, cameras from `multiview_cameras`) are resized to the prior's
size, VAE-encoded (differentiated), noised at one timestep for the whole batch, and denoised by the multi-view prior
in one batched CFG call. The target is the one-step x0 of the guided epsilon,

    x0 = (z_t - sqrt(1 - a) eps_cfg) / sqrt(a),

with its spread matched to the unguided x0's per group ("recon_std_rescale" r: x0 <- r x0 std(x0_c) / std(x0)
+ (1 - r) x0), which keeps CFG 50 from over-saturating. Loss 0.5 * sum((z - sg(x0))^2) / B: the sum-over-elements
/ batch reduction of every SDS form here, so lambdas compare. Numbers from MVDream-threestudio's mvdream-sd21 config
(guidance scale 50 as Dream-in-4D uses; t annealed from [0.98, 0.98] to [0.02, 0.50] over the first 80% of steps;
r = 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .sds import resize_to_prior


@dataclass(frozen=True)
class MultiViewSDSConfig:
    """Timesteps, CFG and the x0 rescale of the multi-view SDS."""

    guidance_scale: float = 50.0
    """CFG scale s of eps_u + s (eps_c - eps_u) (Dream-in-4D supplement: 50 for MVDream)."""
    t_start: tuple[float, float] = (0.98, 0.98)
    """(t_min, t_max) as fractions of the schedule's timesteps at progress 0."""
    t_end: tuple[float, float] = (0.02, 0.50)
    """(t_min, t_max) from progress `anneal_end` on; linear in between (threestudio's [start, a, b, end] ramps)."""
    anneal_end: float = 0.8
    """Progress at which t_end is reached (MVDream: step 8000 of 10000)."""
    recon_std_rescale: float = 0.5
    """r: blend of the guided x0 rescaled to the unguided x0's per-group std (0 = plain guided x0)."""
    image_size: int | None = None
    """Size renders are resized to before encoding; None = the prior's native size (256 for MVDream)."""

    def __post_init__(self) -> None:
        for name in ("t_start", "t_end"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(f"{name} must satisfy 0 <= t_min <= t_max <= 1, got {getattr(self, name)}.")
        if not 0.0 < self.anneal_end <= 1.0:
            raise ValueError(f"anneal_end must lie in (0, 1], got {self.anneal_end}.")
        if not 0.0 <= self.recon_std_rescale <= 1.0:
            raise ValueError(f"recon_std_rescale must lie in [0, 1], got {self.recon_std_rescale}.")
        if self.image_size is not None and (self.image_size < 8 or self.image_size % 8):
            raise ValueError(f"image_size must be a multiple of 8 (the VAE's factor), got {self.image_size}.")


def multiview_timestep_bounds(
    config: MultiViewSDSConfig, num_train_timesteps: int, progress: float
) -> tuple[int, int]:
    """Integer [t_lo, t_hi] (inclusive) at training progress in [0, 1]: int(T * fraction), as threestudio rounds."""
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be in [0, 1], got {progress}.")
    k = min(progress / config.anneal_end, 1.0)
    lo, hi = (s + (e - s) * k for s, e in zip(config.t_start, config.t_end))
    t_lo = min(int(num_train_timesteps * lo), num_train_timesteps - 1)
    return t_lo, min(max(int(num_train_timesteps * hi), t_lo), num_train_timesteps - 1)


def rescaled_x0(x0: Tensor, x0_cond: Tensor, num_views: int, rescale: float) -> Tensor:
    """x0 [B, C, h, w] blended with itself scaled to x0_cond's std over each group of `num_views` views."""
    if rescale == 0.0:
        return x0
    groups = x0.reshape(-1, num_views, *x0.shape[1:])
    dims = tuple(range(1, groups.dim()))
    std_c = x0_cond.reshape(groups.shape).std(dim=dims, keepdim=True)
    factor = (std_c + 1e-8) / (groups.std(dim=dims, keepdim=True) + 1e-8)
    return rescale * (groups * factor).reshape(x0.shape) + (1.0 - rescale) * x0


def multiview_sds(
    prior: Any,
    images: Tensor,
    condition: Any,
    config: MultiViewSDSConfig = MultiViewSDSConfig(),
    progress: float = 0.0,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """x0-reconstruction SDS of a multi-view prior (`priors.base.MultiViewTextPrior`).

    Args:
        images: renders [B, 3, H, W] in [0, 1], B = groups of `prior.num_views` consecutive views, any size.
        condition: `prior.multiview_condition(text, matrices)` for the same B views, in the same order.
        progress: training progress in [0, 1] (annealed timesteps).

    Returns:
        {"loss_sds": scalar, "t": [B] (one value), "x0": detached target latents, "grad_norm": scalar}.
    """
    n = int(prior.num_views)
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[0] % n:
        raise ValueError(
            f"images must be renders [B, 3, H, W] with B a multiple of {n} views, got {tuple(images.shape)}."
        )
    z = prior.encode_images(resize_to_prior(images, config.image_size or prior.image_size))
    b = z.shape[0]
    t_lo, t_hi = multiview_timestep_bounds(config, prior.schedule.num_train_timesteps, progress)
    gen_device = generator.device if generator is not None else z.device
    t = torch.randint(t_lo, t_hi + 1, (1,), generator=generator, device=gen_device).to(z.device).expand(b)
    noise = torch.randn(z.shape, generator=generator, device=gen_device, dtype=torch.float32).to(z.device)
    z_t = prior.schedule.add_noise(z.detach(), noise, t).float()
    eps_u, eps_c = prior.predict_noise_branches(z_t, t, condition)
    eps = eps_u + config.guidance_scale * (eps_c - eps_u)
    a = prior.schedule.alphas_cumprod.to(z.device)[t].view(-1, 1, 1, 1)
    x0 = (z_t - (1.0 - a).sqrt() * eps) / a.sqrt()
    x0_cond = (z_t - (1.0 - a).sqrt() * eps_c) / a.sqrt()
    x0 = torch.nan_to_num(rescaled_x0(x0, x0_cond, n, config.recon_std_rescale).detach(), 0.0, 0.0, 0.0)
    loss = 0.5 * ((z - x0) ** 2).sum() / b
    return {"loss_sds": loss, "t": t, "x0": x0, "grad_norm": ((z.detach() - x0) / b).norm()}
