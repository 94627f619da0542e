"""4D grid field of steps 2-3 (paper Eq. 1-2, SPEC 3): T time knots of the static grid, linear in time.

The encoding is linear in its table, so the features at time t are the encoding of the blended table
(1 - w) V_i + w V_{i+1}; one blend per rendered frame costs O(table) and leaves one grid lookup per point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from . import grid_kernels, mlp_kernels, tv_kernels
from .encoding import GridEncoder, corner_lookup, gather_features
from .static import FieldConfig, RadianceField, StaticField, trunc_exp


@dataclass(frozen=True)
class Grid4DConfig:
    """The dynamic field: the static field's sizes plus time knots and the temporal TV sampling."""

    field: FieldConfig = field(default_factory=FieldConfig)
    """Grid and MLP sizes (must match the static field it starts from)."""
    num_knots: int = 64
    """T, the number of time grids."""
    tv_points: int = 100_000
    """Uniform points the temporal TV loss is averaged over."""

    def __post_init__(self) -> None:
        if self.num_knots < 1:
            raise ValueError(f"num_knots (T) must be >= 1, got {self.num_knots}")


def knot_blend(t: Tensor, num_knots: int) -> tuple[Tensor, Tensor]:
    """Lower knot index and blend weight of time(s) t in [0, 1] (g = t (T - 1))."""
    if num_knots == 1:
        return torch.zeros_like(t, dtype=torch.long), torch.zeros_like(t)
    g = t.clamp(0.0, 1.0) * (num_knots - 1)
    lower = torch.floor(g).long().clamp(max=num_knots - 2)
    return lower, g - lower


class Grid4DField(RadianceField):
    """Features at (x, t): the grid of the time-interpolated table; the MLP is shared over time."""

    is_dynamic = True

    def __init__(self, config: Grid4DConfig = Grid4DConfig()):
        super().__init__()
        self.dynamic_config = config
        self.grid = GridEncoder(config.field.grid)
        table = self.grid.new_table()
        self.embeddings = nn.Parameter(table[None].repeat(config.num_knots, 1, 1))  # [T, entries, F]
        self._init_head(config.field, self.grid.output_dim)

    @classmethod
    def from_static(cls, static: StaticField, num_knots: int = 64, tv_points: int = 100_000) -> Grid4DField:
        """Every knot starts as a copy of the static grid; the MLP starts from the static MLP."""
        model = cls(Grid4DConfig(static.config, num_knots, tv_points)).to(static.encoder.embeddings.device)
        with torch.no_grad():
            model.embeddings.copy_(static.encoder.embeddings[None].expand_as(model.embeddings))
            model.mlp.load_state_dict(static.mlp.state_dict())
        return model

    @property
    def num_knots(self) -> int:
        return self.dynamic_config.num_knots

    def table_at(self, t: Tensor | float) -> Tensor:
        """The grid table [entries, F] at one time t (a float or a 0-d tensor; no host sync)."""
        t = torch.as_tensor(t, dtype=self.embeddings.dtype, device=self.embeddings.device)
        lower, w = knot_blend(t.reshape(()), self.num_knots)
        if self.num_knots == 1:
            return self.embeddings[0]
        pair = self.embeddings.index_select(0, torch.stack([lower, lower + 1]))
        return torch.lerp(pair[0], pair[1], w)

    def tables_at(self, times: Tensor | list[float]) -> Tensor:
        """The tables [B, entries, F] at B times in one blend (one knot gradient per call, however many frames)."""
        t = torch.as_tensor(times, dtype=self.embeddings.dtype).to(self.embeddings.device).reshape(-1)
        if self.num_knots == 1:
            return self.embeddings.expand(t.shape[0], -1, -1)
        lower, w = knot_blend(t, self.num_knots)
        pairs = self.embeddings.index_select(0, torch.cat([lower, lower + 1]))
        return torch.lerp(pairs[: t.shape[0]], pairs[t.shape[0] :], w[:, None, None])

    def at_times(self, times: Tensor | list[float]) -> list[FieldAtTime]:
        """The field frozen at each of B times. A renderer evaluates a frame in many calls (ray chunks, normal
        probes); each call of `features` would blend its own table and its backward would write a gradient the
        size of all T knots. Frozen frames share one blend and one such gradient per render."""
        return [FieldAtTime(self, table) for table in self.tables_at(times)]

    def frames_at(self, times: Tensor | list[float]) -> FrameTables:
        """The field at B frame times for a render of all B frames at once: one blend [B, entries, F], and points that
        carry their frame's time read their frame's table (in one fused op)."""
        return FrameTables(self, times)

    def features(self, x: Tensor, t: Tensor | float | None = None) -> Tensor:
        """x [N, 3]; t a scalar (one time for all points, the rendering case) or [N] per-point times."""
        if t is None:
            raise ValueError("A dynamic field needs a time t in [0, 1]")
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.numel() == 1:
            return self.grid(x, self.table_at(t))
        if t.shape != x.shape[:1]:
            raise ValueError(
                f"t must be a scalar or have one entry per point ({x.shape[0]}), got shape {tuple(t.shape)}"
            )
        lower, w = knot_blend(t, self.num_knots)
        upper = (lower + 1).clamp(max=self.num_knots - 1)
        flat = self.embeddings.reshape(-1, self.embeddings.shape[-1])
        entries = self.embeddings.shape[1]
        rows, weights = corner_lookup(self.grid.normalize(x).to(flat.dtype), self.grid.layout)
        f0 = gather_features(flat, rows + (lower * entries)[:, None, None], weights)
        f1 = gather_features(flat, rows + (upper * entries)[:, None, None], weights)
        return torch.lerp(f0, f1, w[:, None].to(f0.dtype))

    def grid_table(self, t: Tensor | float | None) -> tuple[GridEncoder, Tensor] | None:
        """The blended table of one time t (None for per-point times: `features` blends per point)."""
        if t is None or torch.as_tensor(t).numel() != 1:
            return None
        return self.grid, self.table_at(t)

    def grid_parameters(self) -> list[nn.Parameter]:
        return [self.embeddings]

    def temporal_tv(self, points: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Paper Eq. 2: mean_x sum_i |V_i(x) - V_{i+1}(x)|^2 / ((T - 1) * feature_dim); 0 for T = 1.

        V_i(x) - V_{i+1}(x) is the encoding of the table difference (linearity): the fused op computes the corners
        once and differences the two knots' rows (`tv_kernels`); the composition looks up each difference table
        with corner rows and weights shared across pairs.
        """
        if self.num_knots == 1:
            return self.embeddings.sum() * 0.0
        if points is None:
            bound = self.config.grid.bound
            n = self.dynamic_config.tv_points
            points = (torch.rand(n, 3, generator=generator) * 2 - 1).to(self.embeddings.device) * bound
        if grid_kernels.use_fused():  # one op: corners once, the differences in registers (tv_kernels.py)
            total = tv_kernels.temporal_tv_sum(self.grid.normalize(points), self.embeddings, self.grid.layout)
        else:
            diffs = self.embeddings[1:] - self.embeddings[:-1]  # [T - 1, entries, F]
            rows, weights = corner_lookup(self.grid.normalize(points).to(diffs.dtype), self.grid.layout)
            total = points.new_zeros((), dtype=self.embeddings.dtype)
            for d in diffs:
                total = total + gather_features(d, rows, weights).square().sum()
        return total / (points.shape[0] * (self.num_knots - 1) * self.grid.output_dim)


class FieldAtTime:
    """A Grid4DField at one time: its table [entries, F] is blended already; t arguments are ignored."""

    is_dynamic = True

    def __init__(self, field: Grid4DField, table: Tensor):
        self.field, self.table = field, table

    def __call__(self, x: Tensor, t: Tensor | float | None = None) -> tuple[Tensor, Tensor]:
        """x [N, 3] -> density [N], albedo [N, 3] at this frame's time."""
        return self.field.activate(x, self.field.raw_from(x, self.field.grid, self.table))

    def density(self, x: Tensor, t: Tensor | float | None = None) -> Tensor:
        field = self.field
        return trunc_exp(field.raw_from(x, field.grid, self.table, columns=1)[:, 0] + field.blob(x))


class FrameTables:
    """A Grid4DField at B frame times [B]: the tables [B, entries, F] blended once; a point's time (one of the B,
    exactly: the renderer gives every ray its frame's time) says which table it reads."""

    is_dynamic = True

    def __init__(self, field: Grid4DField, times: Tensor | list[float]):
        times = torch.as_tensor(times, dtype=field.embeddings.dtype).to(field.embeddings.device).reshape(-1)
        self.field, self.tables = field, field.tables_at(times)
        self.sorted, self.order = torch.sort(times)

    def frame_of(self, t: Tensor | float, n: int) -> Tensor:
        """Index [n] of each point's table, for times t (one, or one per point [n])."""
        t = torch.as_tensor(t, dtype=self.sorted.dtype, device=self.sorted.device).reshape(-1)
        found = torch.searchsorted(self.sorted, t).clamp(max=self.sorted.shape[0] - 1)
        return self.order.index_select(0, found).expand(n)

    def raw(self, x: Tensor, t: Tensor | float, columns: int = 4) -> Tensor:
        """The MLP's first outputs [N, columns] at x [N, 3], each point from its frame's table."""
        field, frame = self.field, self.frame_of(t, x.shape[0])
        if mlp_kernels.fusable(field.mlp, x):
            return mlp_kernels.grid_mlp(field.grid.normalize(x), self.tables, field.mlp, field.grid.layout, columns,
                                        frame)  # fmt: skip
        flat = self.tables.reshape(-1, self.tables.shape[-1])
        rows, weights = corner_lookup(field.grid.normalize(x).to(flat.dtype), field.grid.layout)
        features = gather_features(flat, rows + (frame * self.tables.shape[1])[:, None, None], weights)
        return field.mlp(features)[:, :columns]

    def __call__(self, x: Tensor, t: Tensor | float) -> tuple[Tensor, Tensor]:
        """x [N, 3], t [N] (or one time) -> density [N], albedo [N, 3]."""
        return self.field.activate(x, self.raw(x, t))

    def density(self, x: Tensor, t: Tensor | float) -> Tensor:
        return trunc_exp(self.raw(x, t, columns=1)[:, 0] + self.field.blob(x))


__all__ = ["FieldAtTime", "FrameTables", "Grid4DConfig", "Grid4DField", "knot_blend"]
