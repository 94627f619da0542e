"""As-rigid-as-possible guidance on the user's own mesh (mesh animation, Animate3D Eq. 9-11): limbs bend, not stretch.

Each step the mesh's vertices (scene units, welded: one point per position) are moved by the deformation field to
the step's frame times and their ARAP energy against the rest mesh (`geometry/arap.py`) is added. The field is a
backward warp (x_c = x_d + d(x_d, t)), so a vertex's position at t solves x + d(x, t) = x_c: the fixed point is
found without gradients by a fixed number of iterations x <- x_c - d(x, t) (all frames in one batch, warm-started
at the last step's answer for the same frame index, no host sync), then one differentiable step x = x_c - d(x*, t)
carries the gradient into the field. That
is the implicit-function gradient up to a factor (I + dd/dx)^-1 ~ I, exact where the warp is locally a
translation, which is what ARAP asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...geometry.arap import ARAPConfig, ARAPNeighbourhood, arap_energy, arap_neighbourhood, sample_one_rings
from .base import GuidanceTerm, StepContext

_DEFAULT = ARAPConfig()


@dataclass(frozen=True)
class ARAPTermConfig:
    """ARAP on the mesh being animated (used only when a stage is given a mesh)."""

    arap: ARAPConfig = _DEFAULT
    """Neighbourhood weighting and one-ring subsampling (Animate3D's weights are its defaults)."""
    weight: float = _DEFAULT.lambda_arap / _DEFAULT.lambda_sds
    """Weight of the energy beside the video SDS at weight 1: Animate3D's lambda_3 / lambda_2 = 10 / 0.01. The
    energy here is a mean over edges in scene units^2, so the ratio does not carry over one to one: on the limb-mesh
    oracle (docs/animate-mesh.md) 1000 measured no different from 0, 1e5 kept rigid edges, 1e6 also slowed motion."""
    inverse_iterations: int = 4
    """Fixed-point iterations per step for the vertices' positions (warm-started: the field moves little per step;
    the export solves to tolerance, outputs/animated_mesh.py)."""

    def __post_init__(self) -> None:
        if self.weight < 0 or self.inverse_iterations < 1:
            raise ValueError(
                f"Need arap weight >= 0 and inverse_iterations >= 1; got {self.weight}, {self.inverse_iterations}"
            )


def welded_neighbourhood(
    vertices: np.ndarray | Tensor, faces: np.ndarray | Tensor, weighting: str
) -> tuple[ARAPNeighbourhood, Tensor]:
    """The one-rings over welded vertices only (representative i = welded vertex i) and their rest points [W, 3]:
    the energy reads one point per welded vertex, so only those need moving."""
    full = arap_neighbourhood(np.asarray(vertices, dtype=np.float32), np.asarray(faces), weighting)
    rest = torch.as_tensor(np.asarray(vertices, dtype=np.float32))[full.representative]
    identity = torch.arange(full.num_vertices)
    return ARAPNeighbourhood(identity, full.source, full.target, full.weights, full.rest_edges), rest


class ARAP(GuidanceTerm):
    """Weighted ARAP energy of the mesh's vertices at the frame times of the step's view."""

    name = "arap"

    def __init__(self, config: ARAPTermConfig, vertices: np.ndarray | Tensor, faces: np.ndarray | Tensor):
        """vertices [V, 3]: the mesh in scene coordinates (the canonical shape); faces [F, 3]."""
        super().__init__()
        self.config = config
        self.neighbourhood, self.rest = welded_neighbourhood(vertices, faces, config.arap.weighting)
        self.warm: Tensor | None = None  # [F, W, 3] last step's positions per frame index

    def attach(self, device: torch.device) -> None:
        self.neighbourhood = self.neighbourhood.to(device)
        self.rest = self.rest.to(device)

    def positions(self, field: Any, times: Tensor, vertices: Tensor | None = None) -> Tensor:
        """Observed positions [F, K, 3] of welded vertices `vertices` [K] (default all) at times [F], differentiable
        in `field` (a deformation field: `field.displacement(x, t)`)."""
        f, count = times.shape[0], self.rest.shape[0]
        if self.warm is None or self.warm.shape[0] != f:
            self.warm = self.rest.expand(f, count, 3).clone()
        index = torch.arange(count, device=self.rest.device) if vertices is None else vertices
        k = index.shape[0]
        rest = self.rest[index].expand(f, k, 3).reshape(-1, 3)
        t = times.to(rest).repeat_interleave(k)
        x = self.warm[:, index].reshape(-1, 3)
        with torch.no_grad():
            for _ in range(self.config.inverse_iterations):
                x = rest - field.displacement(x, t)
        out = (rest - field.displacement(x, t)).reshape(f, k, 3)
        self.warm[:, index] = out.detach()
        return out

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        times = ctx.view.times
        if self.config.weight <= 0 or times is None:
            return {}
        rings = sample_one_rings(self.neighbourhood, self.config.arap.max_vertices, ctx.generator)
        points = self.positions(ctx.field, times, rings.representative)  # only the vertices the rings touch
        local = replace(rings, representative=torch.arange(points.shape[1], device=points.device))
        return {self.name: self.config.weight * arap_energy(local, points)}


__all__ = ["ARAP", "ARAPTermConfig", "welded_neighbourhood"]
