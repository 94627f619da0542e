"""Static NeRF field of step 1 (SPEC 3): grid encoding + a small MLP -> density and albedo (no view dependence)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from . import mlp_kernels
from .encoding import GridConfig, GridEncoder, GridEncoding


class _TruncExp(torch.autograd.Function):
    """exp with a gradient clamped at 15, so a large density cannot blow up the backward pass."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x.clamp(-15, 15))


def trunc_exp(x: Tensor) -> Tensor:
    return _TruncExp.apply(x)


@dataclass(frozen=True)
class FieldConfig:
    """Grid + MLP sizes and the density blob shared by the static and the 4D field."""

    grid: GridConfig = field(default_factory=GridConfig)
    """The multi-resolution grid."""
    hidden_dim: int = 64
    """Width of the MLP's hidden layer."""
    num_hidden_layers: int = 1
    """Hidden layers of the MLP (32 -> 64 -> 4 is one)."""
    blob_density: float = 10.0
    """Peak of the Gaussian density blob added at the centre, which starts the object there."""
    blob_radius: float = 0.2
    """Standard deviation of the blob."""
    lr_grid: float = 1e-2
    """Adam learning rate of grid parameters."""
    lr_mlp: float = 1e-3
    """Adam learning rate of MLP parameters."""


def make_mlp(in_dim: int, hidden_dim: int, num_hidden_layers: int, out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(num_hidden_layers):
        layers += [nn.Linear(dim, hidden_dim), nn.ReLU(inplace=True)]
        dim = hidden_dim
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


class RadianceField(nn.Module, ABC):
    """Shared head: features -> (density, albedo). Subclasses say how features are looked up."""

    config: FieldConfig

    def _init_head(self, config: FieldConfig, in_dim: int) -> None:
        self.config = config
        self.mlp = make_mlp(in_dim, config.hidden_dim, config.num_hidden_layers, 4)

    def blob(self, x: Tensor) -> Tensor:  # [N]
        c = self.config
        return c.blob_density * torch.exp(-(x * x).sum(-1) / (2 * c.blob_radius**2))

    @abstractmethod
    def features(self, x: Tensor, t: Tensor | float | None) -> Tensor:  # [N, D]
        """Grid features of points x [N, 3] at time t (ignored by static fields)."""

    def grid_table(self, t: Tensor | float | None) -> tuple[GridEncoder, Tensor] | None:
        """The grid and the one table [entries, F] that points at time t read (None: no single table)."""
        return None

    def raw(self, x: Tensor, t: Tensor | float | None = None, columns: int = 4) -> Tensor:
        """The MLP's first `columns` outputs [N, columns] at x [N, 3] and time t, before the activations."""
        found = self.grid_table(t)
        if found is None:
            return self.mlp(self.features(x, t))[:, :columns]
        return self.raw_from(x, *found, columns)

    def raw_from(self, x: Tensor, grid: GridEncoder, table: Tensor, columns: int = 4) -> Tensor:
        """`raw` reading `table` [entries, F]: the fused grid + MLP op when the points need no gradient
        (`mlp_kernels`), else grid then MLP."""
        if mlp_kernels.fusable(self.mlp, x):
            return mlp_kernels.grid_mlp(grid.normalize(x), table, self.mlp, grid.layout, columns)
        return self.mlp(grid(x, table))[:, :columns]

    def forward(self, x: Tensor, t: Tensor | float | None = None) -> tuple[Tensor, Tensor]:
        """x [N, 3], t [N] or None -> density [N] >= 0, albedo [N, 3] in (0, 1)."""
        return self.activate(x, self.raw(x, t))

    def activate(self, x: Tensor, out: Tensor) -> tuple[Tensor, Tensor]:
        """Raw MLP outputs [N, 4] of points x [N, 3] -> density [N], albedo [N, 3]."""
        density = trunc_exp(out[:, 0] + self.blob(x))
        return density, torch.sigmoid(out[:, 1:])

    def head(self, x: Tensor, features: Tensor) -> tuple[Tensor, Tensor]:
        """Grid features [N, D] of points x [N, 3] -> density [N], albedo [N, 3]."""
        return self.activate(x, self.mlp(features))

    def density(self, x: Tensor, t: Tensor | float | None = None) -> Tensor:
        """Density [N] only: the fused path evaluates the MLP's density row alone."""
        return trunc_exp(self.raw(x, t, columns=1)[:, 0] + self.blob(x))

    @abstractmethod
    def grid_parameters(self) -> list[nn.Parameter]:
        """Parameters trained with the grid learning rate."""

    def parameter_groups(self) -> list[dict]:
        """Adam groups with the method's two learning rates (grid 1e-2, MLP 1e-3)."""
        return [
            {"params": self.grid_parameters(), "lr": self.config.lr_grid, "name": "grid"},
            {"params": list(self.mlp.parameters()), "lr": self.config.lr_mlp, "name": "mlp"},
        ]


class StaticField(RadianceField):
    """density = trunc_exp(mlp(grid(x))[0] + blob(x)), albedo = sigmoid(mlp(grid(x))[1:4])."""

    is_dynamic = False

    def __init__(self, config: FieldConfig = FieldConfig()):
        super().__init__()
        self.encoder = GridEncoding(config.grid)
        self._init_head(config, self.encoder.output_dim)

    def features(self, x: Tensor, t: Tensor | float | None = None) -> Tensor:
        return self.encoder(x)

    def grid_table(self, t: Tensor | float | None) -> tuple[GridEncoder, Tensor]:
        return self.encoder.grid, self.encoder.embeddings

    def grid_parameters(self) -> list[nn.Parameter]:
        return [self.encoder.embeddings]
