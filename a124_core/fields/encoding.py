"""Multi-resolution grid encoding (SPEC 3), pure PyTorch with tiny-cuda-nn's "Tiled" grid layout.

Level l has scale s_l = base * b^l - 1 and resolution r_l = ceil(s_l) + 1 (b = (finest / base)^(1 / (L - 1))).
A point x in [-bound, bound]^3 maps to p = x01 * s_l + 0.5; its 8 corners index the level's table at
(cx + cy r + cz r^2) mod size_l, size_l = min(ceil8(r_l^3), 2^log2_entries): dense while the level fits, tiled
(wrapped) beyond. This is tiny-cuda-nn's Tiled grid, so parameters trained with one backend load in the other.

The encoding is linear in its table. Dynamic fields use that: the features of a 4D grid at time t are the
encoding of the time-blended table, and temporal differences are encodings of table differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from . import grid_kernels

_CORNERS = torch.tensor([[(c >> d) & 1 for d in range(3)] for c in range(8)], dtype=torch.long)  # [8, 3]


class LevelScales:
    """What the multi-resolution grids share: a geometric resolution ladder and the concatenated feature width
    (the config needs num_levels, base_resolution, finest_resolution and features_per_level)."""

    @property
    def per_level_scale(self) -> float:
        if self.num_levels == 1:
            return 1.0
        return math.exp(math.log(self.finest_resolution / self.base_resolution) / (self.num_levels - 1))

    @property
    def output_dim(self) -> int:
        return self.num_levels * self.features_per_level


@dataclass(frozen=True)
class GridConfig(LevelScales):
    """Sizes of the multi-resolution grid (reference values of SPEC 3)."""

    num_levels: int = 16
    """Number of resolution levels."""
    features_per_level: int = 2
    """Feature channels stored per grid entry."""
    base_resolution: int = 16
    """Resolution of the coarsest level."""
    finest_resolution: int = 2048
    """Resolution of the finest level (sets the per-level scale)."""
    log2_entries_per_level: int = 16
    """Levels are dense up to 2^this entries, tiled beyond."""
    bound: float = 1.0
    """The grid covers [-bound, bound]^3."""
    init_scale: float = 1e-4
    """Entries start uniform in [-init_scale, init_scale]."""
    backend: str = "auto"
    """'auto' or 'torch': the fused PyTorch op (Triton kernels on CUDA when Triton is installed). tiny-cuda-nn has no
    grid with this layout (dense, then wrapped: the reference's 'tiled' grid; tcnn's Tiled and Hash levels index
    differently), so 'tcnn' is refused rather than silently reading the table another way."""

    def __post_init__(self) -> None:
        if self.num_levels < 1 or self.features_per_level < 1:
            raise ValueError(
                f"num_levels and features_per_level must be >= 1, got {self.num_levels}, {self.features_per_level}"
            )
        if not 2 <= self.base_resolution <= self.finest_resolution:
            raise ValueError(
                f"Need 2 <= base_resolution <= finest_resolution, got {self.base_resolution}, {self.finest_resolution}"
            )
        if not 4 <= self.log2_entries_per_level <= 30:
            raise ValueError(f"log2_entries_per_level must lie in [4, 30], got {self.log2_entries_per_level}")
        if self.bound <= 0:
            raise ValueError(f"bound must be > 0, got {self.bound}")
        if self.backend == "tcnn":
            raise ValueError(
                "backend 'tcnn': tiny-cuda-nn has no grid with this table layout (dense, then wrapped, as the "
                "reference stores it); use 'auto', which runs the fused Triton kernels on CUDA"
            )
        if self.backend not in ("auto", "torch"):
            raise ValueError(f"backend must be 'auto' or 'torch', got {self.backend!r}")


@dataclass(frozen=True)
class GridLayout:
    """Per-level scales, resolutions and table offsets derived from a GridConfig."""

    scales: tuple[float, ...]
    resolutions: tuple[int, ...]
    offsets: tuple[int, ...]  # level l occupies rows offsets[l]:offsets[l + 1]

    @classmethod
    def from_config(cls, config: GridConfig) -> GridLayout:
        scales, resolutions, offsets = [], [], [0]
        for level in range(config.num_levels):
            scale = config.base_resolution * config.per_level_scale**level - 1.0
            resolution = math.ceil(scale) + 1
            size = min(-(-(resolution**3) // 8) * 8, 2**config.log2_entries_per_level)
            scales.append(scale)
            resolutions.append(resolution)
            offsets.append(offsets[-1] + size)
        return cls(tuple(scales), tuple(resolutions), tuple(offsets))

    @property
    def num_entries(self) -> int:
        return self.offsets[-1]

    def sizes(self) -> list[int]:
        return [b - a for a, b in zip(self.offsets[:-1], self.offsets[1:])]


def corner_lookup(x01: Tensor, layout: GridLayout) -> tuple[Tensor, Tensor]:
    """Table rows and trilinear weights of the 8 corners at every level.

    Corner c = cx + 2 cy + 4 cz. Rows are built from a per-point base index plus per-level corner offsets, so no
    [N, L, 8, 3] integer tensor is ever materialised.

    Args:
        x01: points in [0, 1]^3, [N, 3].
    Returns:
        rows [N, L, 8] (long, level offsets included) and weights [N, L, 8] (x01's dtype).
    """
    device = x01.device
    scales = torch.tensor(layout.scales, dtype=x01.dtype, device=device)  # [L]
    res = torch.tensor(layout.resolutions, dtype=torch.long, device=device)
    sizes = torch.tensor(layout.sizes(), dtype=torch.long, device=device)
    offsets = torch.tensor(layout.offsets[:-1], dtype=torch.long, device=device)
    pos = x01[:, None, :] * scales[None, :, None] + 0.5  # [N, L, 3]
    grid = torch.floor(pos)
    frac = pos - grid
    grid = grid.long()
    base = grid[..., 0] + (grid[..., 1] + grid[..., 2] * res) * res  # [N, L]
    corner_offsets = (
        _CORNERS.to(device)[None] * torch.stack([torch.ones_like(res), res, res * res], -1)[:, None]
    ).sum(-1)
    rows = torch.remainder(base[..., None] + corner_offsets[None], sizes[None, :, None]) + offsets[None, :, None]
    wx, wy, wz = (torch.stack([1 - frac[..., d], frac[..., d]], -1) for d in range(3))  # [N, L, 2] each
    weights = (wz[..., :, None, None] * wy[..., None, :, None] * wx[..., None, None, :]).flatten(-3)
    return rows, weights


def encode_with_table(x01: Tensor, table: Tensor, layout: GridLayout) -> Tensor:
    """Features [N, L * F] of points [N, 3] in [0, 1] read from `table` [num_entries, F].

    The fused op (grid_kernels.py; gradients for the table and, when they need one, the points), or the
    composition below inside `grid_path("reference")`.
    """
    x01 = x01.to(table.dtype)
    if grid_kernels.use_fused():
        return grid_kernels.encode(x01, table, layout.scales, layout.resolutions, layout.offsets)
    rows, weights = corner_lookup(x01, layout)
    return gather_features(table, rows, weights)


def gather_features(table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
    """sum_c weights[n, l, c] * table[rows[n, l, c]] -> [N, L * F].

    index_select's backward (index_add) is 2-3x faster on CPU than embedding's.
    """
    values = table.index_select(0, rows.reshape(-1)).reshape(*rows.shape, table.shape[-1])  # [N, L, 8, F]
    return (values * weights[..., None]).sum(2).flatten(1)


class GridEncoder:
    """The parameter-free part of the encoding: layout and backend; tables are passed in."""

    def __init__(self, config: GridConfig):
        self.config = config
        self.layout = GridLayout.from_config(config)

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    def normalize(self, x: Tensor) -> Tensor:
        return ((x + self.config.bound) / (2 * self.config.bound)).clamp(0.0, 1.0)

    def new_table(self) -> Tensor:
        """A freshly initialised table [num_entries, F] (uniform +- init_scale)."""
        table = torch.empty(self.layout.num_entries, self.config.features_per_level)
        return table.uniform_(-self.config.init_scale, self.config.init_scale)

    def __call__(self, x: Tensor, table: Tensor) -> Tensor:
        """Features [N, L * F] of points x [N, 3] in world units, read from `table` [num_entries, F]."""
        if x.shape[0] == 0:
            raise ValueError("Cannot encode an empty batch of points")
        return encode_with_table(self.normalize(x), table, self.layout)


class GridEncoding(nn.Module):
    """Static multi-resolution grid: [N, 3] points in [-bound, bound]^3 -> [N, L * F] features."""

    def __init__(self, config: GridConfig = GridConfig()):
        super().__init__()
        self.config = config
        self.grid = GridEncoder(config)
        self.embeddings = nn.Parameter(self.grid.new_table())

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.grid(x, self.embeddings)
