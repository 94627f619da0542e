"""As-rigid-as-possible energy on the user's own mesh (Animate3D Eq. 9-10, after Sorkine and Alexa 2007), as a
dimensionless strain energy:

    E = sum_f sum_j sum_{k in N(j)} w_jk |(p_j^f - p_k^f) - R_j^f (p_j - p_k)|^2 / |p_j - p_k|^2 / (F sum_jk w_jk)

p are rest positions (the mesh as loaded, the canonical shape), p^f the positions in frame f, N(j) the one-ring of
vertex j on the welded mesh (vertices split at UV seams are one vertex here, so seams cannot tear), R_j^f the
best-fit rotation of j's one-ring (Kabsch: SVD of the weighted edge covariance, reflection excluded). Animate3D
has no mesh (Gaussians) and uses the points within a fixed radius with w = exp(-d_jk / d); on a mesh the
one-ring is the standard ARAP neighbourhood, and we keep the paper's exponential weights with d the mean rest
edge length. Unlike the paper, every frame is compared with the rest mesh rather than with frame 1, since the
canonical mesh is given.

Each residual is divided by its rest edge length, so E is the weighted mean squared strain of the edges: a uniform
scale s gives (s - 1)^2 on any mesh, and the same smooth deformation gives the same E on a coarse mesh and on a
subdivided copy of it. Animate3D's sum of absolute squared residuals (and our earlier mean of them) scales with the
squared edge length instead: a 40k-vertex mesh got ~190x less energy than the 108-vertex test mesh at equal strain,
so no weight could suit both.

Rotations are fitted on detached positions, as in ARAP's local/global solver (rotations fixed during the
position step). Because R_j minimises E, the envelope theorem makes this the exact gradient of min_R E, and it
avoids differentiating an SVD, whose backward pass divides by differences of singular values (inf for one-rings
whose covariance has repeated singular values, e.g. an untouched regular grid). The rotation fit minimises the same
strain energy, so its edge weights are w / |e0|^2 too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .topology import welded_edges


@dataclass(frozen=True)
class ARAPConfig:
    """Weights of Animate3D's objective (Eq. 11) and the ARAP neighbourhood."""

    lambda_rec: float = 100.0
    """Reconstruction loss weight (Animate3D's lambda_1)."""
    lambda_sds: float = 0.01
    """Score-distillation weight (lambda_2)."""
    lambda_arap: float = 10.0
    """ARAP energy weight (lambda_3)."""
    weighting: str = "exp"
    """'exp': w_jk = exp(-d_jk / mean edge length) as Animate3D; 'uniform': w_jk = 1."""
    max_vertices: int | None = 4096
    """Evaluate the energy on this many random one-rings per call (an unbiased estimate of the mean; None = all):
    the term's cost stops growing with the mesh (Animate3D samples 512 points x 3 neighbours)."""

    def __post_init__(self) -> None:
        if self.weighting not in ("exp", "uniform"):
            raise ValueError(f"weighting must be 'exp' or 'uniform', got {self.weighting!r}")
        if self.max_vertices is not None and self.max_vertices < 1:
            raise ValueError(f"max_vertices must be >= 1 or None, got {self.max_vertices}")


@dataclass
class ARAPNeighbourhood:
    """One-rings of the welded mesh, as directed edges j -> k (each undirected edge in both directions)."""

    representative: Tensor  # [W] long: a vertex of the original mesh for each welded vertex
    source: Tensor  # [E] long: j, welded index
    target: Tensor  # [E] long: k, welded index
    weights: Tensor  # [E] float
    rest_edges: Tensor  # [E, 3] float: p_j - p_k at rest

    @property
    def num_vertices(self) -> int:
        return int(self.representative.shape[0])

    def to(self, device: str | torch.device) -> ARAPNeighbourhood:
        return ARAPNeighbourhood(*(getattr(self, k).to(device) for k in self.__dataclass_fields__))


def arap_neighbourhood(
    rest_vertices: np.ndarray | Tensor, faces: np.ndarray | Tensor, weighting: str = "exp"
) -> ARAPNeighbourhood:
    """Build the one-rings of a mesh (rest_vertices [V, 3], faces [F, 3]); vertices at one position are welded."""
    if weighting not in ("exp", "uniform"):
        raise ValueError(f"weighting must be 'exp' or 'uniform', got {weighting!r}")
    rest = torch.as_tensor(np.asarray(rest_vertices, dtype=np.float32))
    classes, edges, _ = welded_edges(rest.numpy(), np.asarray(faces))
    if len(edges) == 0:
        raise ValueError("The mesh has no edges between distinct vertices; ARAP needs triangles.")
    _, first = np.unique(classes, return_index=True)  # a vertex of each class (classes are 0..count-1)
    rep = torch.as_tensor(first.astype(np.int64))
    both = np.concatenate([edges, edges[:, ::-1]])
    source, target = torch.as_tensor(both[:, 0]), torch.as_tensor(both[:, 1])
    rest_edges = rest[rep[source]] - rest[rep[target]]
    length = rest_edges.norm(dim=-1)
    if weighting == "exp":
        weights = torch.exp(-length / length.mean().clamp_min(1e-12))
    else:
        weights = torch.ones_like(length)
    return ARAPNeighbourhood(rep, source, target, weights, rest_edges)


def best_rotations(rest_edges: Tensor, edges: Tensor, weights: Tensor, source: Tensor, num_vertices: int) -> Tensor:
    """Per-vertex rotations [..., W, 3, 3] minimising sum_k w ||e - R e0||^2 (edges [..., E, 3], rest [E, 3])."""
    outer = weights[:, None, None] * rest_edges[:, :, None] * edges[..., None, :]  # w e0 e^T: [..., E, 3, 3]
    covariance = outer.new_zeros(*outer.shape[:-3], num_vertices, 3, 3).index_add_(-3, source, outer)
    u, _, vh = torch.linalg.svd(covariance)
    v = vh.transpose(-1, -2)
    det = torch.det(v @ u.transpose(-1, -2))
    flip = torch.ones_like(u[..., 0, :])  # [..., W, 3]
    flip[..., 2] = torch.where(det < 0, -1.0, 1.0)
    return (v * flip[..., None, :]) @ u.transpose(-1, -2)  # R = V diag(1, 1, det) U^T


def sample_one_rings(
    neighbourhood: ARAPNeighbourhood, count: int | None, generator: torch.Generator | None = None
) -> ARAPNeighbourhood:
    """The one-rings of `count` random vertices (all when None or at least the vertex count), over only the vertices
    they touch (`representative` maps them to the original vertices): what one step evaluates of a large mesh."""
    n = neighbourhood
    if count is None or count >= n.num_vertices:
        return n
    device = n.source.device
    chosen = torch.zeros(n.num_vertices, dtype=torch.bool)
    chosen[torch.randperm(n.num_vertices, generator=generator)[:count]] = True
    keep = chosen.to(device)[n.source]
    source, target = n.source[keep], n.target[keep]
    used = torch.unique(torch.cat([source, target]))
    local = torch.full((n.num_vertices,), -1, dtype=torch.long, device=device)
    local[used] = torch.arange(used.numel(), device=device)
    return ARAPNeighbourhood(n.representative[used], local[source], local[target], n.weights[keep], n.rest_edges[keep])


def arap_energy(
    neighbourhood: ARAPNeighbourhood,
    deformed: Tensor,
    detach_rotations: bool = True,
    max_vertices: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Mean squared edge strain (scalar, dimensionless) of deformed vertex positions [F, V, 3] (original vertex
    order) against the rest mesh. Differentiable in `deformed`. `max_vertices` evaluates a random subset of one-rings
    (an unbiased estimate: `sample_one_rings`)."""
    if deformed.dim() == 2:
        deformed = deformed[None]
    n = sample_one_rings(neighbourhood, max_vertices, generator)
    points = deformed[:, n.representative.to(deformed.device)]  # [F, W, 3]
    source, target = n.source.to(deformed.device), n.target.to(deformed.device)
    rest = n.rest_edges.to(deformed)
    weights = n.weights.to(deformed) / rest.square().sum(-1).clamp_min(1e-24)  # strain: residual / rest length
    edges = points[:, source] - points[:, target]  # [F, E, 3]
    rotation_input = edges.detach() if detach_rotations else edges
    rotations = best_rotations(rest, rotation_input, weights, source, n.num_vertices)  # [F, W, 3, 3]
    residual = edges - (rotations[:, source] @ rest[..., None]).squeeze(-1)
    return (weights * (residual**2).sum(-1)).sum() / (deformed.shape[0] * n.weights.to(deformed).sum())


__all__ = [
    "ARAPConfig",
    "ARAPNeighbourhood",
    "arap_energy",
    "arap_neighbourhood",
    "best_rotations",
    "sample_one_rings",
]
