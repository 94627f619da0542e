"""What a guidance term is: one loss of the method with its own config, prior and cached condition.

A stage is a representation (the scene it trains) plus a list of terms. Each step the stage draws a view (or, on
reconstruction steps, takes the reference view), renders it once and hands every term a `StepContext`; each term
returns its named, already weighted losses (threestudio's convention) or nothing when it does not apply to that
step. A term gets everything it uses from its constructor (configs, camera and schedule settings, the reference
image) and from the step context (the field, the generator, the reference targets, a render callable): it never
sees the stage. Random numbers come only from `ctx.generator`; state a resume needs goes in `state_tensors` /
`load_state`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ...priors.base import PriorKind, check_prior_kind
from ..view import RenderFn, View


@dataclass
class StepContext:
    """One training step as the terms see it."""

    step: int
    """Index of the step being computed (0-based)."""
    progress: float
    """step / (steps - 1), in [0, 1]: annealed timestep ranges and ramps."""
    sds: bool
    """An SDS step (a drawn view); False on reconstruction steps (the reference view only)."""
    view: View
    """What was rendered: the drawn view, or the reference view on reconstruction steps."""
    render: dict[str, Tensor]
    """The renderer's maps of `view` [B, H, W, C]."""
    at_reference_time: bool
    """Frame 0 of the view shows the reference image's moment (static views always; clips that start at t = 0)."""
    field: Any
    """The field being trained (a StaticField, Grid4DField, DeformationField, ...)."""
    generator: torch.Generator
    """The stage's CPU generator: every random number of the step comes from it (bit-identical resumes)."""
    render_view: RenderFn
    """Render another view (or another field, e.g. a frozen condition scene) with the stage's settings."""
    reference_view: View | None = None
    """The input image's camera at the reference time (albedo, white background); None without a reference."""
    targets: dict[str, Tensor | None] | None = None
    """Reference rgb [1, S, S, 3], mask [1, S, S, 1], depth [1, S, S, 1] or None (`stage.reference_targets`)."""
    images: Tensor = field(init=False)
    """The render's colours [B, 3, H, W], the layout priors read (one view of `render["rgb"]` shared by the terms)."""

    def __post_init__(self) -> None:
        self.images = self.render["rgb"].permute(0, 3, 1, 2)


class GuidanceTerm(ABC):
    """One loss of the method. Subclasses set `name` and, when they use a prior, `kind` and `self.prior`."""

    name: str = "term"
    #: Kind of the prior the term uses (None: no prior).
    kind: PriorKind | None = None

    def __init__(self, prior: Any = None):
        if self.kind is not None:
            check_prior_kind(prior, self.kind, f"{self.name} term's prior")
        self.prior = prior

    def attach(self, device: torch.device) -> None:
        """Move what the term renders or computes with onto the training device (priors are moved by the stage)."""
        return None

    def build(self) -> None:
        """Build and cache the term's conditions; the priors are on the training device already."""
        return None

    def render_aspect(self) -> int | tuple[int, int] | None:
        """The size whose aspect the stage's SDS renders should have (a video prior's), or None."""
        return None

    def render_size(self, progress: float) -> tuple[int, int] | None:
        """(H, W) the stage's SDS renders should have at training progress in [0, 1] (a term with its own render
        schedule, Dream-in-4D's video term), or None: the stage's render_size at `render_aspect`."""
        return None

    @property
    def needs_normals(self) -> bool:
        """Whether the term reads normals from the step's render."""
        return False

    @property
    def needs_displacement(self) -> bool:
        """Whether the term reads the displacement map of the step's SDS render (deformation fields)."""
        return False

    @abstractmethod
    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        """Weighted losses of this step, by name; empty when the term does not apply."""

    def state_tensors(self) -> dict[str, Tensor]:
        """Tensors a resumed run needs besides the scene and the optimizer (e.g. a frozen condition model)."""
        return {}

    def load_state(self, tensors: dict[str, Tensor], source: str) -> None:
        """Inverse of `state_tensors` (all checkpoint tensors are passed; take yours)."""
        return None


__all__ = ["GuidanceTerm", "StepContext"]
