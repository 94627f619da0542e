"""Connectivity of a triangle soup: welded vertices and edges.

Loaders split vertices wherever texture coordinates, normals or materials differ (UV seams), so the triangles of
one visually closed surface need not share vertex indices. Welding by position recovers the surface's real
connectivity; edge use counts then say whether it is closed (every edge in exactly two triangles).
"""

from __future__ import annotations

import numpy as np


def weld_vertices(vertices: np.ndarray, tolerance: float = 1e-6) -> tuple[np.ndarray, int]:
    """Index of each vertex's welded representative class [V] and the number of classes.

    Vertices whose coordinates agree after rounding to `tolerance` times the bounding-box diagonal are one
    vertex. Split copies of one vertex are bit-identical in practice, so rounding never separates them.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if len(v) == 0:
        return np.zeros(0, np.int64), 0
    diagonal = float(np.linalg.norm(v.max(0) - v.min(0))) or 1.0
    keys = np.round(v / (tolerance * diagonal)).astype(np.int64)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse, int(inverse.max()) + 1


def edge_counts(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges [E, 2] (low index first) and how many triangles use each [E]."""
    f = np.asarray(faces, dtype=np.int64)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    edges = edges[edges[:, 0] != edges[:, 1]]  # degenerate triangles repeat a vertex
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    return unique, counts


def welded_edges(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(class of each vertex [V], unique edges between classes [E, 2], number of classes)."""
    classes, count = weld_vertices(vertices)
    edges, _ = edge_counts(classes[np.asarray(faces, dtype=np.int64)])
    return classes, edges, count


__all__ = ["edge_counts", "weld_vertices", "welded_edges"]
