"""Dream-in-4D's dynamic field: a frozen canonical StaticField warped by a deformation network (SPEC 13).

A point x_d observed at time t is moved to the canonical point x_c = x_d + d(x_d, t), where d comes from a 4D hash
grid over (x, y, z, t) followed by an MLP with 4 hidden layers of 64; density and albedo are the canonical field's
at x_c. The last layer starts at zero, so d = 0 and the field starts as the canonical scene exactly. The grid's
levels are unmasked coarse to fine: `start_levels` at first, one more every `levels_every` steps (paper: 4, 500).

As in the official code (threestudio DeformableImplicitVolume), the raw MLP output o is squashed to a bounded
displacement, here d = 2 * bound * tanh(o / 2) (the official 2 sigmoid(o) - 1 in unit-cube units), and x_c is
not clamped: the canonical grid clamps its own input, its density blob sees the true x_c.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .hash_encoding import HashGridConfig, HashGridEncoding
from .static import FieldConfig, StaticField, make_mlp


@dataclass(frozen=True)
class DeformationConfig:
    """The deformation network (Dream-in-4D supplement, Sec. 2 and 3.2) and its schedule."""

    grid: HashGridConfig = field(default_factory=HashGridConfig)
    """4D hash grid over (x, y, z, t): 12 levels, base 4, finest 232."""
    hidden_dim: int = 64
    """Width of the displacement MLP."""
    num_hidden_layers: int = 4
    """Hidden layers of the displacement MLP."""
    start_levels: int = 4
    """Grid levels active at step 0; the others return zero features."""
    levels_every: int = 500
    """One more level is unmasked every this many steps."""
    lr_grid: float = 1e-3
    """Adam learning rate of the deformation grid (official config: 0.001; the static stage's grid uses 0.01)."""
    lr_mlp: float = 1e-3
    """Adam learning rate of the deformation MLP."""
    train_canonical: str = "none"
    """What is trained of the canonical field: 'none' (Dream-in-4D freezes it), 'colour' (its albedo; the density
    is read from a frozen copy, so the shape cannot change) or 'all'. The refine stage sets it."""

    def __post_init__(self) -> None:
        if isinstance(self.train_canonical, bool):  # scene files written before the modes existed
            object.__setattr__(self, "train_canonical", "all" if self.train_canonical else "none")
        if self.train_canonical not in ("none", "colour", "all"):
            raise ValueError(f"train_canonical must be 'none', 'colour' or 'all', got {self.train_canonical!r}")
        if self.grid.input_dims != 4:
            raise ValueError(
                f"The deformation grid encodes (x, y, z, t): input_dims must be 4, got {self.grid.input_dims}"
            )
        if not 1 <= self.start_levels <= self.grid.num_levels:
            raise ValueError(f"start_levels must lie in [1, {self.grid.num_levels}], got {self.start_levels}")
        if self.levels_every < 1 or self.hidden_dim < 1 or self.num_hidden_layers < 0:
            raise ValueError(
                f"Need levels_every >= 1, hidden_dim >= 1, num_hidden_layers >= 0; got {self.levels_every}, "
                f"{self.hidden_dim}, {self.num_hidden_layers}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON form for scene metadata."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeformationConfig:
        """Inverse of `to_dict`; unknown keys mean the file was written by another version."""
        known = {f.name for f in dataclasses.fields(cls)}
        grid_known = {f.name for f in dataclasses.fields(HashGridConfig)}
        unknown = (set(data) - known) | (set(data.get("grid", {})) - grid_known)
        if unknown:
            raise ValueError(f"DeformationConfig has no fields {sorted(unknown)}: written by another version")
        values = dict(data)
        if "grid" in values:
            values["grid"] = HashGridConfig(**values["grid"])
        return cls(**values)


class ColourTrainedField(nn.Module):
    """A canonical field whose colour trains while its shape cannot: density from `shape` (a frozen copy of the
    coarse canonical field), albedo from `colour` (trainable, initialised to the same field). Reads like a
    StaticField (`canonical(x)`, `.density`, `.config`, `parameter_groups`), so exports need no special case."""

    is_dynamic = False

    def __init__(self, config: FieldConfig):
        super().__init__()
        self.shape = StaticField(config).requires_grad_(False)
        self.colour = StaticField(config)

    @classmethod
    def around(cls, field: StaticField) -> ColourTrainedField:
        model = cls(field.config).to(field.encoder.embeddings.device)
        model.shape.load_state_dict(field.state_dict())
        model.colour.load_state_dict(field.state_dict())
        return model

    @property
    def config(self) -> FieldConfig:
        return self.shape.config

    def forward(self, x: Tensor, t: Tensor | float | None = None) -> tuple[Tensor, Tensor]:
        return self.shape.density(x), self.colour(x)[1]

    def density(self, x: Tensor, t: Tensor | float | None = None) -> Tensor:
        return self.shape.density(x)

    def parameter_groups(self) -> list[dict]:
        return self.colour.parameter_groups()


def active_levels(step: int, config: DeformationConfig) -> int:
    """Grid levels in use at training step `step`: start_levels + step // levels_every, at most all of them."""
    return min(config.start_levels + max(step, 0) // config.levels_every, config.grid.num_levels)


class DeformationField(nn.Module):
    """Canonical StaticField (frozen unless `train_canonical` says otherwise) + displacement network; a dynamic
    RadianceField."""

    is_dynamic = True

    def __init__(self, field_config: FieldConfig = FieldConfig(), config: DeformationConfig = DeformationConfig()):
        super().__init__()
        self.deformation_config = config
        self.canonical = StaticField(field_config)
        self.encoder = HashGridEncoding(config.grid)
        self.mlp = make_mlp(self.encoder.output_dim, config.hidden_dim, config.num_hidden_layers, 3)
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.register_buffer("levels", torch.tensor(config.start_levels, dtype=torch.long))
        self.set_train_canonical(config.train_canonical)

    @classmethod
    def from_static(cls, static: StaticField, config: DeformationConfig = DeformationConfig()) -> DeformationField:
        """A deformation field around a copy of `static` (the static stage's field is left untouched)."""
        model = cls(static.config, dataclasses.replace(config, train_canonical="none"))
        model = model.to(static.encoder.embeddings.device)
        model.canonical.load_state_dict(static.state_dict())
        model.set_train_canonical(config.train_canonical)
        return model

    @property
    def config(self) -> FieldConfig:
        """The canonical field's sizes (what scene metadata stores as `field_config`)."""
        return self.canonical.config

    def set_train_canonical(self, mode: str | bool) -> None:
        """What of the canonical field trains: 'none' (Dream-in-4D), 'colour' (the current canonical becomes the
        frozen shape of a `ColourTrainedField`) or 'all' (True / False: 'all' / 'none'); parameter_groups follows.
        Leaving 'colour' keeps the trained colour field as the canonical field."""
        config = dataclasses.replace(self.deformation_config, train_canonical=mode)
        mode = config.train_canonical
        if isinstance(self.canonical, ColourTrainedField) and mode != "colour":
            self.canonical = self.canonical.colour
        elif mode == "colour" and not isinstance(self.canonical, ColourTrainedField):
            self.canonical = ColourTrainedField.around(self.canonical)
        self.deformation_config = config
        self.canonical.requires_grad_(mode != "none")
        if isinstance(self.canonical, ColourTrainedField):
            self.canonical.shape.requires_grad_(False)

    def set_progress(self, step: int) -> None:
        """Unmask grid levels for training step `step`; never masks a level again (a refine stage counts its steps
        from 0 but keeps every level the coarse run learned). No host sync: the count lives in a buffer."""
        self.levels.clamp_(min=active_levels(step, self.deformation_config))

    def level_mask(self, dtype: torch.dtype) -> Tensor:  # [L * F]
        grid = self.deformation_config.grid
        level = torch.arange(grid.num_levels, device=self.levels.device)
        return (level < self.levels).to(dtype).repeat_interleave(grid.features_per_level)

    def displacement(self, x: Tensor, t: Tensor | float | None) -> Tensor:
        """d(x, t) [N, 3] in world units for points x [N, 3] at time t (a scalar or [N]), |d_i| < 2 bound."""
        if t is None:
            raise ValueError("A dynamic field needs a time t in [0, 1]")
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.numel() == 1:
            t = t.reshape(1).expand(x.shape[0])
        elif t.shape != x.shape[:1]:
            raise ValueError(f"t must be a scalar or have one entry per point ({x.shape[0]}), got {tuple(t.shape)}")
        bound = self.config.grid.bound
        u = torch.cat([(x + bound) / (2 * bound), t[:, None]], -1)
        features = self.encoder(u) * self.level_mask(self.encoder.embeddings.dtype)
        return (2 * bound) * torch.tanh(self.mlp(features) / 2).to(x.dtype)

    def forward_with_displacement(self, x: Tensor, t: Tensor | float | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """x [N, 3] -> density [N], albedo [N, 3] and the displacement [N, 3] that produced them."""
        d = self.displacement(x, t)
        density, albedo = self.canonical(x + d)
        return density, albedo, d

    def forward(self, x: Tensor, t: Tensor | float | None = None) -> tuple[Tensor, Tensor]:
        """x [N, 3], t scalar or [N] -> density [N] >= 0, albedo [N, 3]: the canonical field at x + d(x, t)."""
        return self.forward_with_displacement(x, t)[:2]

    def density(self, x: Tensor, t: Tensor | float | None = None) -> Tensor:
        """The canonical density at x + d(x, t) [N]: its density row alone (importance passes, normal probes), as
        the static field's density is (the same value, bit for bit, as a static render at d = 0)."""
        return self.canonical.density(x + self.displacement(x, t))

    def grid_parameters(self) -> list[nn.Parameter]:
        return [self.encoder.embeddings]

    def parameter_groups(self) -> list[dict]:
        """Adam groups: deformation grid and MLP (plus the canonical field's own groups when it is trained)."""
        c = self.deformation_config
        groups = [
            {"params": self.grid_parameters(), "lr": c.lr_grid, "name": "deformation_grid"},
            {"params": list(self.mlp.parameters()), "lr": c.lr_mlp, "name": "deformation_mlp"},
        ]
        if c.train_canonical != "none":
            groups += [{**g, "name": f"canonical_{g['name']}"} for g in self.canonical.parameter_groups()]
        return groups


__all__ = ["ColourTrainedField", "DeformationConfig", "DeformationField", "active_levels"]
