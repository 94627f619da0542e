"""Dream-in-4D's total-variation loss on rendered displacement videos (paper Sec. 3.2, weight 1000).

L_TV(D) = sum_{x, y, t} |D[x-1, y, t] - D[x, y, t]|^2 + |D[x, y-1, t] - D[x, y, t]|^2 + |D[x, y, t-1] - D[x, y, t]|^2,
summed (not averaged) over pixels, frames and channels and averaged over a batch, as the official code does.
Displacements are measured in unit-cube units (world / (2 bound)), the official code's coordinates, so the
paper's weight keeps its meaning whatever the scene bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class DisplacementTVConfig:
    """Weight of the displacement TV term (the coordinator's guidance term reads it)."""

    weight: float = 1000.0
    """lambda_TV of the paper and the official config (lambda_deformation_spatial_reg)."""

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"The displacement TV weight must be >= 0, got {self.weight}")


def displacement_tv(video: Tensor, bound: float = 1.0) -> Tensor:
    """Unweighted L_TV of displacement videos [F, H, W, 3] or [B, F, H, W, 3] (world units; mean over B).

    Args:
        video: composited displacements, e.g. render_cameras(..., need_displacement=True)["displacement"] of
            the F frames of one clip.
        bound: the scene bound; differences are divided by 2 * bound (unit-cube units).
    """
    if video.dim() not in (4, 5) or video.shape[-1] != 3:
        raise ValueError(f"Expected a displacement video [F, H, W, 3] or [B, F, H, W, 3], got {tuple(video.shape)}")
    if bound <= 0:
        raise ValueError(f"bound must be > 0, got {bound}")
    d = video / (2 * bound)
    if d.dim() == 4:
        d = d[None]
    frames = (d[:, 1:] - d[:, :-1]).square().sum((1, 2, 3, 4))
    rows = (d[:, :, 1:] - d[:, :, :-1]).square().sum((1, 2, 3, 4))
    cols = (d[:, :, :, 1:] - d[:, :, :, :-1]).square().sum((1, 2, 3, 4))
    return (frames + rows + cols).mean()


__all__ = ["DisplacementTVConfig", "displacement_tv"]
