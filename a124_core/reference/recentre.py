"""Square padding and recentring of the object (SPEC 8).

The object's bounding box (alpha > threshold) is centred in a square frame whose side is
max(box height, box width) / (1 - 2 * border_ratio), i.e. a margin of `border_ratio` of the frame on each
side of the longer box side; the frame is then resized to each requested size. All channels go through
one resampling, so colour, alpha and depth stay aligned; callers pass colour and depth premultiplied by
alpha so transparent pixels never bleed into the object's edges.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def object_bbox(alpha: Tensor, threshold: float = 0.5) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1), end-exclusive, of the pixels with alpha > threshold; alpha: [H, W]."""
    fg = alpha > threshold
    if not bool(fg.any()):
        raise ValueError(
            f"The foreground is empty (no pixel with alpha/mask > {threshold}); pass an image with the object "
            "visible and a mask (or alpha) that covers it."
        )
    rows = torch.nonzero(fg.any(dim=1)).flatten()
    cols = torch.nonzero(fg.any(dim=0)).flatten()
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def box_onto(
    source: tuple[float, float, float, float], target: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """The square crop (y0, y1, x0, x1) in source pixels that maps the `source` box onto the `target` box, given as
    fractions (0..1) of the output square: recentring that crop with border_ratio 0 puts the source object where
    the target object is (scale = the mean of the two axes' ratios, so a slightly squeezed box still fits)."""
    y0, y1, x0, x1 = source
    v0, v1, u0, u1 = target
    if not (0.0 <= v0 < v1 <= 1.0 and 0.0 <= u0 < u1 <= 1.0) or y1 <= y0 or x1 <= x0:
        raise ValueError(f"Boxes must be non-empty (y0, y1, x0, x1) with fractions in [0, 1]: {source} onto {target}.")
    side = ((y1 - y0) / (v1 - v0) + (x1 - x0) / (u1 - u0)) / 2.0
    cy = (y0 + y1) / 2.0 + (0.5 - (v0 + v1) / 2.0) * side
    cx = (x0 + x1) / 2.0 + (0.5 - (u0 + u1) / 2.0) * side
    return cy - side / 2.0, cy + side / 2.0, cx - side / 2.0, cx + side / 2.0


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear (antialiased when shrinking) resize of [C, H, W]."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=shrink)[0]


def recentre(
    channels: Tensor, bbox: tuple[int, int, int, int], border_ratio: float, sizes: tuple[int, ...]
) -> list[Tensor]:
    """Crop a square frame around `bbox` (zero outside the image) and resize it to each of `sizes`.

    Args:
        channels: [C, H, W] float; zero is the value used outside the source image.
        bbox: (y0, y1, x0, x1) of the object in `channels`, end-exclusive.
        border_ratio: margin on each side as a fraction of the frame, in [0, 0.5).
        sizes: output sides, e.g. (256, 512).

    Returns:
        One [C, S, S] tensor per size in `sizes`.
    """
    if not 0.0 <= border_ratio < 0.5:
        raise ValueError(f"border_ratio is {border_ratio}; it must be in [0, 0.5) (0.2 leaves 20 % on each side).")
    y0, y1, x0, x1 = bbox
    cy, cx = (y0 + y1) / 2.0, (x0 + x1) / 2.0
    side = max(y1 - y0, x1 - x0) / (1.0 - 2.0 * border_ratio)  # frame side in source pixels

    # Resample the source once so the frame is ~2x the largest output: integer crop offsets then cost at
    # most a quarter output pixel, and neither huge sources nor tiny ones need a huge intermediate.
    work = 2 * max(sizes)
    scale = work / side
    h, w = channels.shape[-2:]
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    src = _resize(channels, (nh, nw))
    sy, sx = nh / h, nw / w
    top, left = round(cy * sy - side * sy / 2), round(cx * sx - side * sx / 2)
    fh, fw = max(1, round(side * sy)), max(1, round(side * sx))

    frame = channels.new_zeros((channels.shape[0], fh, fw))
    ys, ye = max(top, 0), min(top + fh, nh)
    xs, xe = max(left, 0), min(left + fw, nw)
    if ys < ye and xs < xe:
        frame[:, ys - top : ye - top, xs - left : xe - left] = src[:, ys:ye, xs:xe]
    return [_resize(frame, (s, s)) for s in sizes]


def checkerboard(size: int, squares: int = 16, light: float = 0.8, dark: float = 0.6) -> Tensor:
    """[size, size] checkerboard, the usual backdrop that shows transparency in previews."""
    cell = max(1, math.ceil(size / squares))
    idx = torch.arange(size) // cell
    return torch.where((idx[:, None] + idx[None, :]) % 2 == 0, light, dark).float()
