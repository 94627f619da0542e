"""Temporal balanced sampling (SPEC 7): 100k draws against the exact probabilities of the recipe."""

from __future__ import annotations

import math

import pytest
import torch

from a124_core.training.time_sampling import (
    TimeSamplingConfig,
    exact_distribution,
    sample_clip_times,
    sample_clip_times_batch,
)

N = 100_000


def closed_form(alpha: float, f: int = 16, p: int = 256) -> tuple[float, float]:
    """P(start at t = 0) and P(end at t = 1), written out independently of the enumeration.

    span = floor(randint(16, 256) / 16) * 16 with inclusive bounds: 16, 32, ..., 240 each with probability 16/241,
    256 with probability 1/241; an unforced start is uniform over {0, ..., 256 - span}. Frame 0 is at t = 0 iff the
    clip is not mirrored (p 0.5) and starts at 0: forced (alpha) or drawn 0 ((1 - alpha) / (257 - span)).
    Symmetrically, the last frame is at t = 1 iff mirrored and start 0.
    """
    weights = dict.fromkeys(range(f, p, f), f / (p - f + 1)) | {p: 1 / (p - f + 1)}
    p_zero = alpha + (1 - alpha) * sum(w / (p - s + 1) for s, w in weights.items())
    return 0.5 * p_zero, 0.5 * p_zero


def test_exact_distribution_matches_closed_form_and_is_a_pmf():
    exact = exact_distribution(TimeSamplingConfig())
    start, end = closed_form(0.2)
    assert exact["p_start_zero"] == pytest.approx(start, abs=1e-12)
    assert exact["p_end_one"] == pytest.approx(end, abs=1e-12)
    # alpha = 0.2: P(start 0) = 0.1 + 0.4 * E[1 / (257 - span)] ~= 0.1070
    assert exact["p_start_zero"] == pytest.approx(0.10701, abs=1e-5)
    torch.testing.assert_close(exact["frame_pmf"].sum(1), torch.ones(16, dtype=torch.float64))


@pytest.mark.parametrize("alpha", [0.2, 0.5])
def test_empirical_start_end_and_per_frame_histogram(alpha):
    config = TimeSamplingConfig(alpha=alpha)
    clips = sample_clip_times_batch(N, config, torch.Generator().manual_seed(1))
    exact = exact_distribution(config)

    def check(observed: float, p: float, what: str) -> None:
        sigma = math.sqrt(p * (1 - p) / N)
        assert abs(observed - p) <= 5 * sigma + 1e-9, (
            f"{what}: observed {observed:.5f}, exact {p:.5f} (sigma {sigma:.5f})"
        )

    check(float(clips.starts_at_zero.float().mean()), exact["p_start_zero"], "P(start at t=0)")
    check(float((clips.times[:, 0] == 0).float().mean()), exact["p_start_zero"], "P(frame 0 at t=0)")
    check(float((clips.times[:, -1] == 1).float().mean()), exact["p_end_one"], "P(last frame at t=1)")
    # Per-frame histograms over the 257 lattice points: a chi-square-style bound per bin.
    pmf = exact["frame_pmf"]
    for k in (0, 7, 15):
        counts = torch.bincount(clips.lattice_index[:, k], minlength=257).double() / N
        sigma = (pmf[k] * (1 - pmf[k]) / N).sqrt()
        worst = ((counts - pmf[k]).abs() - 5 * sigma).max()
        assert worst <= 1e-9, f"frame {k}: a lattice bin is {float(worst):.2e} beyond 5 sigma"
        assert float(counts[pmf[k] == 0].sum()) == 0.0, f"frame {k} hit lattice points of probability 0"
    pooled = torch.bincount(clips.lattice_index.reshape(-1), minlength=257).double() / (N * 16)
    expected = pmf.mean(0)
    assert float((pooled - expected).abs().max()) < 5 * float((expected.max() / (N * 16)) ** 0.5)
    # Balanced: t = 0 and t = 1 are drawn over 10x more often than without the alpha branch (plain random clips).
    plain = exact_distribution(TimeSamplingConfig(alpha=0.0))["frame_pmf"].mean(0)
    assert float(pooled[0]) > 10 * float(plain[0]) and float(pooled[256]) > 10 * float(plain[256])


def test_clip_structure():
    g = torch.Generator().manual_seed(0)
    clips = sample_clip_times_batch(2000, TimeSamplingConfig(), g)
    d = clips.lattice_index.diff(dim=1)
    assert bool((d > 0).all()), "frame times must increase"
    assert bool((d == d[:, :1]).all()), "frames are evenly spaced"
    assert set((d[:, 0] * 16).unique().tolist()) <= set(range(16, 257, 16)), "span is a multiple of F in [F, P]"
    assert float(clips.times.min()) >= 0 and float(clips.times.max()) <= 1
    times, start0 = sample_clip_times(TimeSamplingConfig(num_frames=4, lattice=16), g)
    assert times.shape == (4,) and isinstance(start0, bool) and start0 == bool(times[0] == 0)


def test_alpha_one_forces_start_or_end():
    clips = sample_clip_times_batch(2000, TimeSamplingConfig(alpha=1.0), torch.Generator().manual_seed(0))
    assert bool(((clips.times[:, 0] == 0) | (clips.times[:, -1] == 1)).all())


@pytest.mark.parametrize(
    "kwargs, match",
    [({"alpha": 1.5}, "alpha"), ({"num_frames": 16, "lattice": 100}, "multiple"), ({"num_frames": 0}, "num_frames")],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TimeSamplingConfig(**kwargs)
