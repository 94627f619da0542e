"""Occupancy grid that lets the renderer skip empty space (SPEC 4).

One 3D density grid per time slot; each slot is refreshed with the field evaluated at the slot's own time
(the reference refreshes every slot at t = 0.5, which lets motion leave the grid stale; we do not copy that).
Updates are an EMA of maxima: grid = max(decay * grid, density(cell centre + jitter)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class OccupancyConfig:
    """Occupancy grid settings."""

    resolution: int = 128
    """Cells per axis."""
    decay: float = 0.95
    """EMA decay of the stored densities."""
    threshold: float = 10.0
    """A cell is occupied above min(mean density, threshold)."""
    update_every: int = 16
    """Training steps between refreshes."""
    chunk: int = 1 << 18
    """Cells evaluated per field call during a refresh."""
    dilate: bool = True
    """Also mark the 26 neighbours of occupied cells: a cell cut by the surface whose jittered centre fell
    outside would otherwise punch holes into silhouettes. Only adds samples, never changes an image."""
    slot_span: bool = True
    """Refresh a time slot at a random time within the span it serves (the times whose nearest slot it is) instead
    of exactly at its own time: the EMA-max then covers wherever the object is during that span, so a part moving
    between two slot times is not culled (measured with a fast-moving sphere in tests/oracle)."""

    def __post_init__(self) -> None:
        if not 2 <= self.resolution <= 1290:  # cell indices are int32: resolution^3 < 2^31
            raise ValueError(f"Occupancy resolution must lie in [2, 1290], got {self.resolution}")
        if not 0.0 < self.decay <= 1.0:
            raise ValueError(f"Occupancy decay must lie in (0, 1], got {self.decay}")


class OccupancyGrid(nn.Module):
    """Per-time-slot occupancy over [-bound, bound]^3; all cells count as occupied until the first refresh."""

    def __init__(self, config: OccupancyConfig = OccupancyConfig(), time_slots: int = 1, bound: float = 1.0):
        super().__init__()
        if time_slots < 1:
            raise ValueError(f"time_slots must be >= 1, got {time_slots}")
        self.config = config
        self.bound = bound
        r = config.resolution
        self.register_buffer("density", torch.zeros(time_slots, r**3))
        self.register_buffer("occupied", torch.ones(time_slots, r**3, dtype=torch.bool))
        self.register_buffer("refreshed", torch.zeros(time_slots, dtype=torch.bool))

    @property
    def time_slots(self) -> int:
        return int(self.density.shape[0])

    def slot_of(self, t: float | Tensor | None) -> Tensor:
        """Nearest time slot of time t in [0, 1] (slot s holds time s / (slots - 1)): [] for one time, [N] for a
        tensor of N > 1 times."""
        if t is None or self.time_slots == 1:
            return torch.zeros((), dtype=torch.long, device=self.density.device)
        t = torch.as_tensor(t, dtype=torch.float32, device=self.density.device)
        t = t.reshape(-1) if t.numel() > 1 else t.reshape(())
        return torch.round(t.clamp(0, 1) * (self.time_slots - 1)).long()

    def slot_time(self, slot: int) -> float:
        return 0.0 if self.time_slots == 1 else slot / (self.time_slots - 1)

    def refresh_time(self, slot: int, generator: torch.Generator | None = None) -> float:
        """The time a refresh evaluates slot `slot` at: its own, or (slot_span) uniform over the times it serves."""
        t = self.slot_time(slot)
        if not self.config.slot_span or self.time_slots == 1:
            return t
        half = 0.5 / (self.time_slots - 1)
        u = float(torch.rand((), generator=generator))
        return min(1.0, max(0.0, t - half + 2 * half * u))

    def cell_index(self, x: Tensor) -> Tensor:  # [N] int32
        """The cell of each point x [N, 3] (int32: half the bytes of int64 on the renderer's every slot)."""
        r = self.config.resolution
        ijk = ((x + self.bound) / (2 * self.bound) * r).int().clamp(0, r - 1)
        return ijk[:, 0] * (r * r) + ijk[:, 1] * r + ijk[:, 2]

    def query(self, x: Tensor, t: float | Tensor | None = None) -> Tensor:
        """Occupied mask [N] of points x [N, 3] at time t: one time, or one per point [N] (a batch of frames)."""
        return self._occupied_at(self.cell_index(x), t)

    def query_rays(self, points: Tensor, t: float | Tensor | None = None) -> Tensor:
        """Occupied mask [R, S] of the points [R, S, 3] along R rays at time t: one time, or one per ray [R]; the
        time slot is found per ray, not per point (`query` of the flattened points, for less work)."""
        rays, slots = points.shape[:2]
        return self._occupied_at(self.cell_index(points.reshape(-1, 3)).reshape(rays, slots), t)

    def _occupied_at(self, cells: Tensor, t: float | Tensor | None) -> Tensor:
        """Occupancy of `cells` [N, ...] at one time, or at one time per leading index [N]."""
        slot = self.slot_of(t)
        if slot.dim() == 0:
            table = self.occupied.index_select(0, slot.reshape(1))[0]
            return table.index_select(0, cells.reshape(-1)).reshape(cells.shape)
        offset = slot * self.occupied.shape[1]
        offset = offset.int() if self.occupied.numel() < 2**31 else offset  # int32 like the cells where it fits
        index = offset.reshape(-1, *[1] * (cells.dim() - 1)) + cells
        return self.occupied.reshape(-1).index_select(0, index.reshape(-1)).reshape(cells.shape)

    def cell_centres(self) -> Tensor:  # [R^3, 3], ordered like cell_index
        r = self.config.resolution
        axis = (
            torch.arange(r, device=self.density.device, dtype=torch.float32) + 0.5
        ) / r * 2 * self.bound - self.bound
        return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)

    @torch.no_grad()
    def refresh(self, density_fn, slots: list[int] | None = None, generator: torch.Generator | None = None) -> None:
        """Re-evaluate `density_fn(x [N, 3], t) -> [N]` at jittered cell centres of each slot at its own time."""
        cell = 2 * self.bound / self.config.resolution
        centres = self.cell_centres()
        for slot in range(self.time_slots) if slots is None else slots:
            jitter = (torch.rand(centres.shape, generator=generator) - 0.5).to(centres) * cell
            points = centres + jitter
            t = self.refresh_time(slot, generator) if self.time_slots > 1 else None
            new = torch.cat([density_fn(chunk, t).float() for chunk in points.split(self.config.chunk)])
            new = torch.nan_to_num(new, nan=0.0, posinf=1e6)
            fresh = ~self.refreshed[slot]
            self.density[slot] = torch.where(fresh, new, torch.maximum(self.density[slot] * self.config.decay, new))
            threshold = torch.clamp(self.density[slot].mean(), max=self.config.threshold)
            occupied = self.density[slot] > threshold
            if self.config.dilate:
                r = self.config.resolution
                grid = occupied.float().reshape(1, 1, r, r, r)
                occupied = torch.nn.functional.max_pool3d(grid, 3, stride=1, padding=1).reshape(-1) > 0
            self.occupied[slot] = occupied
            self.refreshed[slot] = True

    def occupancy_fraction(self) -> float:
        return float(self.occupied.float().mean())
