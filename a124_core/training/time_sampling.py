"""Temporal balanced sampling of clip frame times (paper Fig. 3b, SPEC 7).

Each step renders F frames whose times lie on a lattice of P points. A clip is forced to start at t = 0
with probability alpha, its span is drawn like an FPS in [F, P], and half of the clips are mirrored so they
end at t = 1. The first and last time grids are therefore sampled far more often than plain random clips
would sample them, and first-frame supervision (reference view, Zero123) gets enough steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class TimeSamplingConfig:
    """Clip sampling of the dynamic stages (SPEC 7)."""

    num_frames: int = 16
    """F, frames per clip (the video prior's frame count)."""
    lattice: int = 256
    """P, time lattice points; frame times are multiples of 1 / P."""
    alpha: float = 0.2
    """Probability that a clip is forced to start at frame 0 (before mirroring)."""
    p_mirror: float = 0.5
    """Probability that a clip is mirrored (times -> reversed(P - times)), so forced clips end at t = 1."""

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.lattice < self.num_frames or self.lattice % self.num_frames:
            raise ValueError(
                f"lattice ({self.lattice}) must be a multiple of num_frames ({self.num_frames}) and at least as large"
            )
        for name in ("alpha", "p_mirror"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability and must lie in [0, 1], got {value}")


@dataclass
class ClipTimes:
    """Frame times of a batch of sampled clips."""

    times: Tensor  # [N, F] in [0, 1], one row per clip, frame order
    starts_at_zero: Tensor  # [N] bool: frame 0 is at t = 0 (first-frame supervision applies)
    lattice_index: Tensor  # [N, F] long, times * P


def sample_clip_times_batch(
    n: int, config: TimeSamplingConfig = TimeSamplingConfig(), generator: torch.Generator | None = None
) -> ClipTimes:
    """Draw n clips at once (vectorised; the training step draws n = 1).

    The recipe, per clip (randint bounds inclusive, as in the reference's Python `random.randint`):
      1. forced = U < alpha;
      2. span = floor(randint(F, P) / F) * F: each of F, 2F, ..., P - F with probability F / (P - F + 1), P with
         probability 1 / (P - F + 1) (FPS in [F, P]);
      3. start = 0 if forced else randint(0, P - span), uniform over {0, ..., P - span};
      4. idx_k = start + k * span / F, k = 0..F-1;
      5. mirrored = U < p_mirror: idx = reversed(P - idx);
      6. times = idx / P.
    Frame 0 is at t = 0 only for unmirrored clips with start 0; the last frame is at t = 1 only for mirrored
    clips with start 0 (see `exact_distribution`).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    f, p = config.num_frames, config.lattice
    forced = torch.rand(n, generator=generator) < config.alpha
    span = torch.div(torch.randint(f, p + 1, (n,), generator=generator), f, rounding_mode="floor") * f
    free_start = (torch.rand(n, generator=generator) * (p - span + 1)).floor().long().clamp(max=p - span)
    start = torch.where(forced, torch.zeros_like(free_start), free_start)
    k = torch.arange(f)
    idx = start[:, None] + k[None] * torch.div(span, f, rounding_mode="floor")[:, None]  # [N, F]
    mirrored = torch.rand(n, generator=generator) < config.p_mirror
    idx = torch.where(mirrored[:, None], (p - idx).flip(-1), idx)
    return ClipTimes(times=idx.float() / p, starts_at_zero=idx[:, 0] == 0, lattice_index=idx)


def sample_clip_times(
    config: TimeSamplingConfig = TimeSamplingConfig(), generator: torch.Generator | None = None
) -> tuple[Tensor, bool]:
    """One clip: (times [F] in [0, 1], whether it starts at t = 0). The bool costs no device sync (CPU)."""
    clips = sample_clip_times_batch(1, config, generator)
    return clips.times[0], bool(clips.starts_at_zero[0])


def exact_distribution(config: TimeSamplingConfig = TimeSamplingConfig()) -> dict[str, Tensor | float]:
    """Exact probabilities of the recipe above, by enumeration (for tests and docs).

    Returns:
        p_start_zero: P(frame 0 at t = 0); p_end_one: P(last frame at t = 1);
        frame_pmf: [F, P + 1], P(frame k at lattice index i).
    """
    f, p = config.num_frames, config.lattice
    span_probability: dict[int, float] = {}
    for raw in range(f, p + 1):
        span_probability[raw // f * f] = span_probability.get(raw // f * f, 0.0) + 1.0 / (p - f + 1)
    pmf = torch.zeros(f, p + 1, dtype=torch.float64)
    k = torch.arange(f)
    for span, p_span in span_probability.items():
        interval = span // f
        starts = torch.arange(p - span + 1)
        p_start = torch.full((p - span + 1,), (1 - config.alpha) / (p - span + 1), dtype=torch.float64)
        p_start[0] += config.alpha
        idx = starts[:, None] + k[None] * interval  # [S, F]
        for mirrored, p_m in ((False, 1 - config.p_mirror), (True, config.p_mirror)):
            frames = (p - idx).flip(-1) if mirrored else idx
            weight = (p_span * p_m * p_start)[:, None].expand_as(frames)
            pmf.scatter_add_(1, frames.T.contiguous(), weight.T.contiguous())
    return {"p_start_zero": float(pmf[0, 0]), "p_end_one": float(pmf[-1, p]), "frame_pmf": pmf}


__all__ = ["ClipTimes", "TimeSamplingConfig", "exact_distribution", "sample_clip_times", "sample_clip_times_batch"]
