"""Losses besides SDS (SPEC 6): reference reconstruction and the geometry regularisers.

Every function returns an unweighted scalar; the stage multiplies it by its lambda. Images are channel-last
as the renderer returns them: [B, H, W, C].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def rgb_loss(pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
    """MSE(mask * pred, mask * gt); pred/gt [B, H, W, 3] on white, mask [B, H, W, 1] in {0, 1}."""
    return F.mse_loss(mask * pred, mask * gt)


def mask_loss(opacity: Tensor, mask: Tensor) -> Tensor:
    """MSE(opacity, mask); both [B, H, W, 1]."""
    return F.mse_loss(opacity, mask)


def pearson(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """Pearson correlation of two flat tensors [N]."""
    a = a - a.mean()
    b = b - b.mean()
    return (a * b).sum() / (a.norm() * b.norm() + eps)


def depth_loss(pred_depth: Tensor, gt_depth: Tensor, mask: Tensor) -> Tensor:
    """(1 - pearson(-pred_depth, gt_depth)) / 2 over masked pixels.

    The rendered depth is a distance along the ray (larger = farther) while the reference depth is a monocular
    estimate with larger = nearer, so the rendered depth enters negated: a perfect (affine) match gives 0.
    pred_depth, gt_depth, mask: [B, H, W, 1]. Fewer than 2 masked pixels give 0 (nothing to correlate).
    """
    keep = mask.reshape(-1) > 0.5
    pred, gt = pred_depth.reshape(-1)[keep], gt_depth.reshape(-1)[keep]
    if pred.numel() < 2:
        return pred_depth.sum() * 0.0
    return (1.0 - pearson(-pred, gt)) / 2.0


def opacity_entropy(opacity: Tensor, eps: float = 1e-5) -> Tensor:
    """Mean binary entropy of the opacity [B, H, W, 1]: pushes pixels toward fully empty or fully solid."""
    o = opacity.clamp(eps, 1.0 - eps)
    return (-o * torch.log(o) - (1 - o) * torch.log(1 - o)).mean()


def orientation_loss(orientation: Tensor) -> Tensor:
    """Mean of the renderer's per-pixel sum(sg(w) max(n . d, 0)^2) [B, H, W, 1] (DreamFusion)."""
    return orientation.mean()


def _gaussian_kernel(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> Tensor:  # [size]
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    k = torch.exp(-(x * x) / (2 * sigma * sigma))
    return k / k.sum()


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of [B, H, W, C] images (reflect padding), kernel 2 * ceil(2 sigma) + 1."""
    radius = max(1, math.ceil(2 * sigma))
    b, h, w, c = images.shape
    radius = min(radius, h - 1, w - 1)
    if radius < 1:
        return images
    k = _gaussian_kernel(2 * radius + 1, sigma, images.device, images.dtype)
    x = images.permute(0, 3, 1, 2).reshape(b * c, 1, h, w)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
    return x.reshape(b, c, h, w).permute(0, 2, 3, 1)


def normal_tv(normal: Tensor) -> Tensor:
    """Total variation (mean squared neighbour differences) of a normal image [B, H, W, 3]."""
    dy = (normal[:, 1:] - normal[:, :-1]).square().mean()
    dx = (normal[:, :, 1:] - normal[:, :, :-1]).square().mean()
    return dx + dy


def normal_blur_loss(normal: Tensor, sigma: float = 2.0) -> Tensor:
    """MSE of a normal image [B, H, W, 3] to its (detached) blurred copy."""
    return F.mse_loss(normal, gaussian_blur(normal.detach(), sigma))


def ramp(step: int, total_steps: int, fraction: float = 0.5) -> float:
    """Linear 0 -> 1 over the first `fraction` of a stage (opacity entropy is ramped in over half)."""
    length = max(1.0, fraction * total_steps)
    return min(1.0, step / length)


__all__ = [
    "depth_loss",
    "gaussian_blur",
    "mask_loss",
    "normal_blur_loss",
    "normal_tv",
    "opacity_entropy",
    "orientation_loss",
    "pearson",
    "ramp",
    "rgb_loss",
]
