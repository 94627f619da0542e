"""Multi-resolution hash grid over D input dimensions (tiny-cuda-nn's "HashGrid" layout), PyTorch and tcnn paths.

tcnn's rules, mirrored exactly (include/tiny-cuda-nn/common_device.h and encodings/grid.h) so a table trained
with one backend loads in the other:
- level l has scale s_l = exp2(l * log2(b)) * base - 1 in float32 and resolution r_l = ceil(s_l) + 1;
- its table has min(ceil8(r_l^D), 2^log2_hashmap_size) rows (r_l^D capped at 2^31 - 1 before rounding);
- a point u in [0, 1]^D maps to p = u * s_l + 0.5; its 2^D corners are read at the dense index
  sum_d c_d r_l^d while r_l^D fits in the table (and r_l is small enough for uint32), else at the spatial hash
  xor_d (c_d * pi_d mod 2^32) with pi = (1, 2654435761, 805459861, 3674653429, ...); either modulo the table size.
Corner k takes bit d of k as its offset along dim d; weights are the products of (1 - f_d) or f_d.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .encoding import LevelScales, _tcnn_available, gather_features

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
    """'auto' (tiny-cuda-nn when importable and on CUDA), 'torch' or 'tcnn'."""

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
        if self.backend not in ("auto", "torch", "tcnn"):
            raise ValueError(f"backend must be 'auto', 'torch' or 'tcnn', got {self.backend!r}")


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


def _corner_terms(grid: Tensor, combine: str, strides: Tensor) -> Tensor:
    """Integer index of all 2^D corners from per-dim terms; grid [N, L, D] long, strides [L, D] long.

    combine 'add' builds the dense index sum_d (g_d + c_d) stride_d; 'xor' the hash xor_d (g_d + c_d) pi_d. tcnn
    wraps each product to uint32; hashed tables have 2^k rows, so the low k bits, and the row, are the same.
    Corner k's offset along dim d is bit d of k (the new dim becomes the most significant bit at each step).
    """
    out = None
    for d in range(grid.shape[-1]):
        pair = torch.stack([grid[..., d], grid[..., d] + 1], -1) * strides[None, :, d, None]  # [N, L, 2]
        if out is None:
            out = pair
        elif combine == "xor":
            out = torch.bitwise_xor(out[..., None, :], pair[..., :, None]).flatten(-2)
        else:
            out = (out[..., None, :] + pair[..., :, None]).flatten(-2)
    return out


def hash_corner_lookup(u: Tensor, layout: HashGridLayout) -> tuple[Tensor, Tensor]:
    """Table rows and multilinear weights of the 2^D corners at every level.

    Args:
        u: points in [0, 1]^D, [N, D].
    Returns:
        rows [N, L, 2^D] (long, level offsets included) and weights [N, L, 2^D] (u's dtype).
    """
    device, dims = u.device, u.shape[-1]
    scales = torch.tensor(layout.scales, dtype=u.dtype, device=device)
    pos = u[:, None, :] * scales[None, :, None] + 0.5  # [N, L, D]
    grid = torch.floor(pos)
    frac = pos - grid
    grid = grid.long()
    res = torch.tensor(layout.resolutions, dtype=torch.long, device=device)
    sizes = torch.tensor(layout.sizes(), dtype=torch.long, device=device)
    offsets = torch.tensor(layout.offsets[:-1], dtype=torch.long, device=device)
    num_dense = len(layout.hashed) - sum(layout.hashed)  # resolutions grow: dense levels come first
    dense_strides = res[:, None] ** torch.arange(dims, device=device)[None]  # [L, D]
    primes = torch.tensor(PRIMES[:dims], dtype=torch.long, device=device).expand(len(layout.scales), -1)
    parts = []
    if num_dense:
        parts.append(_corner_terms(grid[:, :num_dense], "add", dense_strides[:num_dense]))
    if num_dense < len(layout.hashed):
        parts.append(_corner_terms(grid[:, num_dense:], "xor", primes[num_dense:]))
    index = torch.cat(parts, 1)
    rows = torch.remainder(index, sizes[None, :, None]) + offsets[None, :, None]
    weights = None
    for d in range(dims):
        pair = torch.stack([1 - frac[..., d], frac[..., d]], -1)  # [N, L, 2]
        weights = pair if weights is None else (weights[..., None, :] * pair[..., :, None]).flatten(-2)
    return rows, weights


class TcnnHashGrid:
    """tiny-cuda-nn HashGrid over D dims evaluated with an external parameter table (same layout as the torch path).

    Not exercised by the test suite (no CUDA here); the torch path is checked against a per-point reference.
    """

    def __init__(self, config: HashGridConfig):
        import tinycudann as tcnn
        from tinycudann.modules import _module_function

        self._module = tcnn.Encoding(
            config.input_dims,
            {
                "otype": "HashGrid",
                "n_levels": config.num_levels,
                "n_features_per_level": config.features_per_level,
                "log2_hashmap_size": config.log2_hashmap_size,
                "base_resolution": config.base_resolution,
                "per_level_scale": config.per_level_scale,
                "interpolation": "Linear",
            },
            dtype=torch.float32,
        )
        self._function = _module_function

    def __call__(self, u: Tensor, table: Tensor) -> Tensor:
        params = table.reshape(-1).float().contiguous()
        if params.numel() != self._module.params.numel():
            raise ValueError(f"tcnn hash grid expects {self._module.params.numel()} parameters, got {params.numel()}")
        out = self._function.apply(
            self._module.native_tcnn_module, u.float().contiguous(), params, self._module.loss_scale
        )
        return out.float()


class HashGridEncoding(nn.Module):
    """[N, D] points in [0, 1]^D -> [N, L * F] features; the table is one parameter [num_entries, F]."""

    def __init__(self, config: HashGridConfig = HashGridConfig()):
        super().__init__()
        self.config = config
        self.layout = HashGridLayout.from_config(config)
        table = torch.empty(self.layout.num_entries, config.features_per_level)
        self.embeddings = nn.Parameter(table.uniform_(-config.init_scale, config.init_scale))
        self._tcnn: TcnnHashGrid | None = None
        self._tcnn_checked = False

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    def uses_tcnn(self, device: torch.device) -> bool:
        if device.type != "cuda":
            return False
        if not self._tcnn_checked:
            use = self.config.backend == "tcnn" or (self.config.backend == "auto" and _tcnn_available(device))
            self._tcnn = TcnnHashGrid(self.config) if use else None
            self._tcnn_checked = True
        return self._tcnn is not None

    def forward(self, u: Tensor) -> Tensor:
        if u.dim() != 2 or u.shape[1] != self.config.input_dims:
            raise ValueError(f"Expected points [N, {self.config.input_dims}], got {tuple(u.shape)}")
        if u.shape[0] == 0:
            raise ValueError("Cannot encode an empty batch of points")
        u = u.clamp(0.0, 1.0)
        if self.uses_tcnn(u.device):
            return self._tcnn(u, self.embeddings)
        rows, weights = hash_corner_lookup(u.to(self.embeddings.dtype), self.layout)
        return gather_features(self.embeddings, rows, weights)


__all__ = ["HashGridConfig", "HashGridEncoding", "HashGridLayout", "PRIMES", "TcnnHashGrid", "hash_corner_lookup"]
