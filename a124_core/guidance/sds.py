"""Score distillation sampling (SDS) and the x0-reconstruction variant (SPEC 5).

Both take renders in [0, 1], resize them to the prior's size (differentiably), encode them with the prior's
VAE (differentiated), noise the latents at a random timestep and ask the frozen prior for the CFG epsilon.
They return named losses; the stage multiplies each by its lambda (threestudio convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..priors.base import Prior


@dataclass(frozen=True)
class SDSConfig:
    """How timesteps are drawn and how the SDS gradient is shaped."""

    #: CFG scale s in eps_u + s (eps_c - eps_u) (SPEC 5: SD 100, Zero123 5, video 100, ControlNet 7.5).
    guidance_scale: float = 100.0
    #: (t_min, t_max) as fractions of the prior's num_train_timesteps; t ~ U[t_min, t_max] (SPEC: 0.2-0.6).
    t_range: tuple[float, float] = (0.2, 0.6)
    #: If set, t_max is annealed linearly from t_range[1] to this value as progress goes 0 -> 1.
    t_max_end: float | None = None
    #: Clamp each element of the SDS gradient to [-grad_clip, grad_clip] (SPEC 5: 1 for video); None = off.
    grad_clip: float | None = None
    #: One timestep for the whole batch instead of one per image (the ControlNet's two frames of a step share
    #: their t, as the reference draws one t per step).
    shared_timestep: bool = False
    #: Size renders are resized to before encoding (square int or (H, W)); None = the prior's native size. The
    #: stage owns it, not the prior (ControlNet-Tile: 1024 in the paper preset, 512 in fast).
    image_size: int | tuple[int, int] | None = None
    #: If set, t_min is annealed linearly from t_range[0] to this value as progress goes 0 -> 1 (Dream-in-4D:
    #: [0.99, 0.99] -> [0.2, 0.5], both ends move).
    t_min_end: float | None = None

    def __post_init__(self) -> None:
        lo, hi = self.t_range
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"t_range must satisfy 0 <= t_min <= t_max <= 1, got {self.t_range}.")
        lo_end = lo if self.t_min_end is None else self.t_min_end
        if self.t_min_end is not None and not 0.0 <= self.t_min_end <= 1.0:
            raise ValueError(f"t_min_end must lie in [0, 1], got {self.t_min_end}.")
        if self.t_max_end is not None and not lo_end <= self.t_max_end <= 1.0:
            raise ValueError(f"t_max_end must lie in [t_min at the end, 1] = [{lo_end}, 1], got {self.t_max_end}.")
        hi_end = hi if self.t_max_end is None else self.t_max_end
        if lo_end > hi_end:
            raise ValueError(f"t_min_end ({lo_end}) must not exceed t_max at the end ({hi_end}).")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be positive or None, got {self.grad_clip}.")
        sizes = (self.image_size,) if isinstance(self.image_size, int) else self.image_size or ()
        if any(s < 8 or s % 8 for s in sizes):
            raise ValueError(f"image_size must be a multiple of 8 (the VAE's factor) and >= 8, got {self.image_size}.")


def timestep_bounds(config: SDSConfig, num_train_timesteps: int, progress: float = 0.0) -> tuple[int, int]:
    """Integer [t_lo, t_hi] (inclusive) at training progress in [0, 1]."""
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be in [0, 1], got {progress}.")
    lo, hi = config.t_range
    if config.t_max_end is not None:
        hi = hi + (config.t_max_end - hi) * progress
    if config.t_min_end is not None:
        lo = lo + (config.t_min_end - lo) * progress
    n = num_train_timesteps
    t_lo = min(max(round(lo * n), 0), n - 1)
    t_hi = min(max(round(hi * n), t_lo), n - 1)
    return t_lo, t_hi


def resize_to_prior(images: Tensor, size: int | tuple[int, int]) -> Tensor:
    """images [B, 3, H, W] -> [B, 3, S, S] (or (H', W')), bilinear without antialiasing, differentiable."""
    target = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) == target:
        return images
    return F.interpolate(images, size=target, mode="bilinear", align_corners=False, antialias=False)


def scoring_size(config: SDSConfig, prior: Prior) -> int | tuple[int, int]:
    """The size renders are scored at: the config's, else the prior's native size."""
    return config.image_size or prior.image_size


def render_shape(render_size: int, prior_size: int | tuple[int, int]) -> tuple[int, int]:
    """(H, W) of renders for a prior that reads `prior_size` images: the prior's aspect, longer side `render_size`.

    A 144x80 Zeroscope prior gets 128x71 renders instead of squares squashed 1.8x on their way to it (SPEC 5).
    """
    h, w = (prior_size, prior_size) if isinstance(prior_size, int) else prior_size
    scale = render_size / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def center_square(images: Tensor) -> Tensor:
    """The centred square crop of images [B, C, H, W] (the object sits at the centre; square priors see it
    undistorted when the clip was rendered at a video prior's aspect)."""
    h, w = images.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return images[..., top : top + side, left : left + side]


def _per_sample(weight: float | Tensor, batch: int, like: Tensor) -> Tensor:
    """weight (scalar or [B]) -> [B, 1, ...] broadcastable to `like`."""
    w = torch.as_tensor(weight, dtype=torch.float32, device=like.device).reshape(-1)
    if w.numel() not in (1, batch):
        raise ValueError(f"weight must be a scalar or have one value per sample ({batch}), got {w.numel()} values.")
    return w.expand(batch).view(-1, *([1] * (like.dim() - 1)))


def _noised(prior: Prior, images: Tensor, config: SDSConfig, progress: float, generator: torch.Generator | None):
    """Shared front half: resize, encode, draw t and noise, add noise. Returns (z, z_t, noise, t, alpha_bar)."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images must be renders [B, 3, H, W] (video: [F, 3, H, W]) in [0, 1], got {tuple(images.shape)}."
        )
    z = prior.encode_images(resize_to_prior(images, scoring_size(config, prior)))
    b = z.shape[0]
    t_lo, t_hi = timestep_bounds(config, prior.schedule.num_train_timesteps, progress)
    gen_device = generator.device if generator is not None else z.device
    draws = 1 if config.shared_timestep else b
    t = torch.randint(t_lo, t_hi + 1, (draws,), generator=generator, device=gen_device).to(z.device).expand(b)
    noise = torch.randn(z.shape, generator=generator, device=gen_device, dtype=torch.float32).to(z.device)
    z_t = prior.schedule.add_noise(z.detach(), noise, t)
    alpha_bar = prior.schedule.alphas_cumprod.to(z.device)[t].view(-1, *([1] * (z.dim() - 1)))
    return z, z_t, noise, t, alpha_bar


def score_distillation(
    prior: Prior,
    images: Tensor,
    condition: Any,
    config: SDSConfig,
    weight: float | Tensor = 1.0,
    progress: float = 0.0,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """SDS loss whose gradient w.r.t. the latents is weight * w(t) * (eps_hat - eps), w(t) = 1 - alpha_bar.

    Args:
        images: renders [B, 3, H, W] in [0, 1] (video priors: [F, 3, H, W], one clip); any size.
        condition: what the prior's `*_condition` methods built.
        weight: scalar or per-sample [B] (e.g. Zero123's angle weight); lambda is applied by the stage.
        progress: training progress in [0, 1] for the annealed t_max.

    Returns:
        {"loss_sds": scalar 0.5 * sum((z - sg(z - grad))^2) / B, "t": [B], "grad_norm": scalar}.
    """
    z, z_t, noise, t, alpha_bar = _noised(prior, images, config, progress, generator)
    eps_hat = prior.predict_noise(z_t, t, condition, config.guidance_scale).float()
    grad = _per_sample(weight, z.shape[0], z) * (1.0 - alpha_bar) * (eps_hat - noise)
    if config.grad_clip is not None:
        grad = grad.clamp(-config.grad_clip, config.grad_clip)
    grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
    target = (z - grad).detach()
    loss = 0.5 * F.mse_loss(z, target, reduction="sum") / z.shape[0]
    return {"loss_sds": loss, "t": t, "grad_norm": grad.norm().detach()}


def x0_reconstruction(
    prior: Prior,
    images: Tensor,
    condition: Any,
    config: SDSConfig,
    weight: float | Tensor = 1.0,
    progress: float = 0.0,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """One-step x0 target (ControlNet stage, SPEC 5): loss = 0.5 * sum_b weight_b |z_b - sg(x0_hat_b)|^2 / B.

    x0_hat = (z_t - sqrt(1 - alpha_bar) eps_hat) / sqrt(alpha_bar). The sum-over-elements / batch reduction
    matches `score_distillation`, so lambdas of the two are on the same scale.

    Returns:
        {"loss_x0": scalar, "t": [B], "x0": detached x0_hat latents}.
    """
    z, z_t, _noise, t, alpha_bar = _noised(prior, images, config, progress, generator)
    eps_hat = prior.predict_noise(z_t, t, condition, config.guidance_scale).float()
    x0_hat = (z_t.float() - (1.0 - alpha_bar).sqrt() * eps_hat) / alpha_bar.sqrt()
    x0_hat = torch.nan_to_num(x0_hat.detach(), nan=0.0, posinf=0.0, neginf=0.0)
    w = _per_sample(weight, z.shape[0], z)
    loss = 0.5 * (w * (z - x0_hat) ** 2).sum() / z.shape[0]
    return {"loss_x0": loss, "t": t, "x0": x0_hat}
