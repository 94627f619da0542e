"""Multi-resolution hash grid over D input dimensions in tiny-cuda-nn's "HashGrid" layout.

tcnn's rules, mirrored exactly (include/tiny-cuda-nn/common_device.h and encodings/grid.h), so a table trained
with tcnn reads the same here:
- level l has scale s_l = exp2(l * log2(b)) * base - 1 in float32 and resolution r_l = ceil(s_l) + 1;
- its table has min(ceil8(r_l^D), 2^log2_hashmap_size) rows (r_l^D capped at 2^31 - 1 before rounding);
- a point u in [0, 1]^D maps to p = u * s_l + 0.5; its 2^D corners are read at the dense index
  sum_d c_d r_l^d while r_l^D fits in the table (and r_l is small enough for uint32), else at the spatial hash
  xor_d (c_d * pi_d mod 2^32) with pi = (1, 2654435761, 805459861, 3674653429, ...); either modulo the table size.
Corner k takes bit d of k as its offset along dim d; weights are the products of (1 - f_d) or f_d.

Evaluated by the fused op `a124::hash_grid_encode` (hash_kernels.py: Triton on CUDA, PyTorch elsewhere) unless the
points need a gradient or `grid_path("reference")` asks for the composition below. tiny-cuda-nn is not used: the
fused op is what tcnn's HashGrid would run, with outputs tested equal to the composition (tcnn was only ever
picked up when it happened to import, untested and without a wheel, so results depended on what was installed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from . import grid_kernels, hash_kernels
from .encoding import LevelScales, gather_features

PRIMES = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737)
"""tcnn's coherent prime hash factors, one per input dimension."""
MAX_DENSE_BASE = (0, 0xFFFFFFFF, 0xFFFF, 0x659, 0xFF, 0x54, 0x28, 0x17)
"""Largest resolution whose dense index fits uint32, per dimension count (tcnn's MAX_BASES)."""


@dataclass(frozen=True)
class HashGridConfig(LevelScales):
    """Sizes of a D-dimensional hash grid. Defaults: Dream-in-4D's deformation grid over (x, y, z, t)."""

    input_dims: int = 4
    """D, the number of input coordinates (each normalised to [0, 1] by the caller)."""
    num_levels: int = 12
    """Number of resolution levels (paper: 12)."""
    features_per_level: int = 2
    """Feature channels per entry (the official config's 2; tcnn allows 1, 2, 4 or 8)."""
    base_resolution: int = 4
    """Resolution of the coarsest level (paper: 4)."""
    finest_resolution: int = 232
    """Resolution of the finest level (paper: 232); sets the per-level scale."""
    log2_hashmap_size: int = 19
    """Rows per level are capped at 2^this, hashed beyond (official config and tcnn default: 19)."""
    init_scale: float = 1e-4
    """Entries start uniform in [-init_scale, init_scale] (tcnn's initialisation, like the static grid)."""
    backend: str = "auto"
    """'auto' or 'torch': the fused op (Triton kernels on CUDA when Triton is installed). 'tcnn' is refused: see the
    module docstring."""

    def __post_init__(self) -> None:
        if not 1 <= self.input_dims < len(PRIMES):
            raise ValueError(f"input_dims must lie in [1, {len(PRIMES) - 1}], got {self.input_dims}")
        if self.num_levels < 1 or self.features_per_level < 1:
            raise ValueError(
                f"num_levels and features_per_level must be >= 1, got {self.num_levels}, {self.features_per_level}"
            )
        if not 2 <= self.base_resolution <= self.finest_resolution:
            raise ValueError(
                f"Need 2 <= base_resolution <= finest_resolution, got {self.base_resolution}, {self.finest_resolution}"
            )
        if not 4 <= self.log2_hashmap_size <= 30:
            raise ValueError(f"log2_hashmap_size must lie in [4, 30], got {self.log2_hashmap_size}")
        if self.backend == "tcnn":
            raise ValueError(
                "backend 'tcnn': tiny-cuda-nn is no longer used for the hash grid; use 'auto', which runs the fused "
                "Triton kernels on CUDA (the same HashGrid layout, so a tcnn-trained table reads the same)"
            )
        if self.backend not in ("auto", "torch"):
            raise ValueError(f"backend must be 'auto' or 'torch', got {self.backend!r}")


@dataclass(frozen=True)
class HashGridLayout:
    """Per-level scales, resolutions, table offsets and whether the level is hashed."""

    scales: tuple[float, ...]
    resolutions: tuple[int, ...]
    offsets: tuple[int, ...]  # level l occupies rows offsets[l]:offsets[l + 1]
    hashed: tuple[bool, ...]

    @classmethod
    def from_config(cls, config: HashGridConfig) -> HashGridLayout:
        dims = config.input_dims
        log2_scale = np.float32(np.log2(np.float32(config.per_level_scale)))
        scales, resolutions, offsets, hashed = [], [], [0], []
        for level in range(config.num_levels):
            scale = np.float32(np.exp2(np.float32(level) * log2_scale)) * np.float32(config.base_resolution)
            scale = float(np.float32(scale - np.float32(1.0)))
            resolution = math.ceil(scale) + 1
            dense = 2**31 - 1 if float(resolution) ** dims > 2**31 - 1 else resolution**dims
            size = min(-(-dense // 8) * 8, 2**config.log2_hashmap_size)
            scales.append(scale)
            resolutions.append(resolution)
            offsets.append(offsets[-1] + size)
            hashed.append(resolution > MAX_DENSE_BASE[dims] or size < resolution**dims)
        if any(h and not later for h, later in zip(hashed, hashed[1:])):
            raise ValueError(f"hashed levels must follow the dense ones, got {hashed}")
        return cls(tuple(scales), tuple(resolutions), tuple(offsets), tuple(hashed))

    @property
    def num_entries(self) -> int:
        return self.offsets[-1]

    def sizes(self) -> list[int]:
        return [b - a for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    @property
    def num_dense(self) -> int:
        """Dense levels (they come first: resolutions grow)."""
        return len(self.hashed) - sum(self.hashed)

    def strides(self, dims: int) -> tuple[int, ...]:
        """Per level and dim [L * D]: r^d for dense levels, tcnn's prime for hashed ones."""
        return tuple(PRIMES[d] if h else r**d for r, h in zip(self.resolutions, self.hashed) for d in range(dims))


def hash_corner_lookup(u: Tensor, layout: HashGridLayout) -> tuple[Tensor, Tensor]:
    """Table rows and multilinear weights of the 2^D corners at every level.

    Args:
        u: points in [0, 1]^D, [N, D].
    Returns:
        rows [N, L, 2^D] (long, level offsets included) and weights [N, L, 2^D] (u's dtype).
    """
    return hash_kernels.corners(
        u, list(layout.scales), list(layout.strides(u.shape[-1])), list(layout.offsets), layout.num_dense
    )


class HashGridEncoding(nn.Module):
    """[N, D] points in [0, 1]^D -> [N, L * F] features; the table is one parameter [num_entries, F]."""

    def __init__(self, config: HashGridConfig = HashGridConfig()):
        super().__init__()
        self.config = config
        self.layout = HashGridLayout.from_config(config)
        table = torch.empty(self.layout.num_entries, config.features_per_level)
        self.embeddings = nn.Parameter(table.uniform_(-config.init_scale, config.init_scale))
        self._strides = self.layout.strides(config.input_dims)

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    def forward(self, u: Tensor) -> Tensor:
        if u.dim() != 2 or u.shape[1] != self.config.input_dims:
            raise ValueError(f"Expected points [N, {self.config.input_dims}], got {tuple(u.shape)}")
        if u.shape[0] == 0:
            raise ValueError("Cannot encode an empty batch of points")
        u = u.clamp(0.0, 1.0).to(self.embeddings.dtype)
        if grid_kernels.use_fused() and not u.requires_grad:
            layout = self.layout
            return hash_kernels.encode(u, self.embeddings, layout.scales, self._strides, layout.offsets,
                                       layout.num_dense)  # fmt: skip
        rows, weights = hash_corner_lookup(u, self.layout)
        return gather_features(self.embeddings, rows, weights)


__all__ = ["HashGridConfig", "HashGridEncoding", "HashGridLayout", "PRIMES", "hash_corner_lookup"]
