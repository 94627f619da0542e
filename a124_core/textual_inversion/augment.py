"""Image augmentations for textual inversion (SPEC 9), in plain torch (torchvision is not a dependency).

Geometric ones (flip, rotation, random resized crop) are folded into one affine resampling of the
premultiplied RGBA, so the object is resampled once and uncovered corners become background. Photometric
ones (colour jitter, grayscale, blur) act on the composited RGB. Every random number comes from the caller's
`torch.Generator`, which makes a resumed run draw exactly what an uninterrupted one would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths and probabilities (SPEC 9 defaults)."""

    flip_p: float = 0.5
    """Probability of a horizontal flip."""
    rotate_p: float = 0.75
    """Probability of a rotation."""
    rotate_deg: float = 10.0
    """Rotation angle drawn from U[-rotate_deg, rotate_deg]."""
    crop_scale: tuple[float, float] = (0.85, 1.15)
    """Crop side relative to the image: < 1 zooms in, > 1 zooms out (padding with background)."""
    jitter_p: float = 0.75
    """Probability of a colour jitter."""
    brightness: float = 0.1
    """Brightness factor drawn from U[1 - b, 1 + b]."""
    contrast: float = 0.1
    """Contrast factor drawn from U[1 - c, 1 + c]."""
    saturation: float = 0.1
    """Saturation factor drawn from U[1 - s, 1 + s]."""
    hue: float = 0.02
    """Hue rotation drawn from U[-h, h] turns."""
    grayscale_p: float = 0.1
    """Probability of converting to grayscale."""
    blur_p: float = 0.1
    """Probability of a Gaussian blur."""
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    """Blur sigma range in pixels at 512 px (scaled with the image size)."""


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _coin(gen: torch.Generator, p: float) -> bool:
    return float(torch.rand((), generator=gen)) < p


def warp(rgba: Tensor, flip: bool, angle_deg: float, scale: float, tx: float, ty: float) -> Tensor:
    """Flip + rotate + zoom [C, H, W] in one resampling; zeros enter from outside the image.

    The output samples the input at scale * R(angle) * (x', y') + (tx, ty) in normalised [-1, 1] coordinates,
    with x' = -x when flipped: scale < 1 zooms in, angle > 0 turns the content counter-clockwise on screen.
    """
    if angle_deg == 0.0 and scale == 1.0 and tx == 0.0 and ty == 0.0:
        return rgba.flip(-1) if flip else rgba  # exact: no resampling blur for a pure flip or identity
    a = math.radians(angle_deg)
    f = -1.0 if flip else 1.0
    cos, sin = math.cos(a) * scale, math.sin(a) * scale
    theta = torch.tensor([[cos * f, -sin, tx], [sin * f, cos, ty]], dtype=rgba.dtype, device=rgba.device)
    grid = F.affine_grid(theta[None], [1, *rgba.shape], align_corners=False)
    return F.grid_sample(rgba[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


def geometric(rgba: Tensor, cfg: AugmentConfig, gen: torch.Generator) -> Tensor:
    """One random flip + rotation + resized crop of a premultiplied RGBA image [4, H, W] -> [4, H, W]."""
    flip = _coin(gen, cfg.flip_p)
    angle = _uniform(gen, -cfg.rotate_deg, cfg.rotate_deg) if _coin(gen, cfg.rotate_p) else 0.0
    scale = _uniform(gen, *cfg.crop_scale)
    slack = abs(1.0 - scale)  # how far the crop window can move and stay within (or around) the image
    tx, ty = _uniform(gen, -slack, slack), _uniform(gen, -slack, slack)
    return warp(rgba, flip, angle, scale, tx, ty)


def _grey(rgb: Tensor) -> Tensor:
    """ITU-R 601 luma [1, H, W] of rgb [3, H, W]."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype, device=rgb.device)
    return (rgb * w[:, None, None]).sum(0, keepdim=True)


def _hue_rotate(rgb: Tensor, turns: float) -> Tensor:
    """Rotate hue by `turns` of a full circle around the grey axis (YIQ rotation)."""
    a = 2 * math.pi * turns
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(a), -math.sin(a)], [0.0, math.sin(a), math.cos(a)]])
    m = (torch.linalg.inv(to_yiq) @ rot @ to_yiq).to(rgb)
    return torch.einsum("ij,jhw->ihw", m, rgb)


def photometric(rgb: Tensor, cfg: AugmentConfig, gen: torch.Generator) -> Tensor:
    """Colour jitter, grayscale and blur of a composited image [3, H, W] in [0, 1] -> [3, H, W]."""
    if _coin(gen, cfg.jitter_p):
        b = _uniform(gen, 1 - cfg.brightness, 1 + cfg.brightness)
        c = _uniform(gen, 1 - cfg.contrast, 1 + cfg.contrast)
        s = _uniform(gen, 1 - cfg.saturation, 1 + cfg.saturation)
        h = _uniform(gen, -cfg.hue, cfg.hue)
        rgb = (rgb * b).clamp(0, 1)
        rgb = ((rgb - _grey(rgb).mean()) * c + _grey(rgb).mean()).clamp(0, 1)
        rgb = ((rgb - _grey(rgb)) * s + _grey(rgb)).clamp(0, 1)
        rgb = _hue_rotate(rgb, h).clamp(0, 1)
    if _coin(gen, cfg.grayscale_p):
        rgb = _grey(rgb).expand(3, -1, -1)
    if _coin(gen, cfg.blur_p):
        sigma = _uniform(gen, *cfg.blur_sigma) * rgb.shape[-1] / 512
        rgb = gaussian_blur(rgb, sigma)
    return rgb.contiguous()


def gaussian_blur(rgb: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of [C, H, W] with reflect padding (identity for tiny sigma)."""
    radius = min(math.ceil(3 * sigma), (min(rgb.shape[-2:]) - 1) // 2)
    if radius < 1:
        return rgb
    x = torch.arange(-radius, radius + 1, dtype=rgb.dtype, device=rgb.device)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    c = rgb.shape[0]
    out = F.pad(rgb[None], (radius, radius, 0, 0), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return out[0]


def augment(rgba: Tensor, background: Tensor, cfg: AugmentConfig, gen: torch.Generator) -> Tensor:
    """Augmented training view: straight RGBA [4, H, W] -> composited RGB [3, H, W] in [0, 1].

    background: [3] colour the object is composited on after the geometric transform.
    """
    premult = torch.cat([rgba[:3] * rgba[3:], rgba[3:]])
    warped = geometric(premult, cfg, gen)
    rgb = warped[:3] + (1 - warped[3:]) * background.to(rgba)[:, None, None]
    return photometric(rgb.clamp(0, 1), cfg, gen)
