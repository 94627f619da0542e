"""The grid encoding as one fused op: points in, features out; corner rows and weights never reach memory.

The PyTorch composition (`encoding.corner_lookup` + `gather_features`) writes int64 corner rows, trilinear weights
and gathered features for every sample and level ([N, L, 8] and [N, L, 8, F] tensors) and keeps them for the
backward: ~10 KB of memory traffic per sample forward at the reference sizes, more in the backward (issue 19,
BENCHMARKS.md). `a124::grid_encode` reads the points and writes the features; its backward recomputes the corners
from the points and scatters the gradient. Implementations of the same op:
  - CUDA with Triton: `grid_triton.py`, one kernel per pass, corners in registers (what a GPU runs);
  - anywhere else (CPU, CUDA without Triton): PyTorch, int32 rows where they fit, embedding_bag for the weighted
    gather (no [N, L, 8, F] tensor) and nothing kept for the backward but the points.
Both take the composition's corner rows and weights exactly; the sums agree to fp32 rounding
(tests/fields/test_grid_kernels.py). Points that require grad (the deformation field's canonical lookup at
x + d(x, t)) get d(features)/d(points) from a second backward op, which recomputes the corners and reads the
table rows again: sum over corners of <table row, grad> times the weight's derivative, times the level's scale.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
from torch import Tensor

_INT32_MAX = 2**31 - 1
_PATHS = ("fused", "reference")
_path = "fused"


@contextlib.contextmanager
def grid_path(name: str) -> Iterator[None]:
    """Evaluate grids with 'fused' (the default) or 'reference' (the composition) inside the block: A/B benchmarks
    and tests."""
    global _path
    if name not in _PATHS:
        raise ValueError(f"grid path must be one of {_PATHS}, got {name!r}")
    previous, _path = _path, name
    try:
        yield
    finally:
        _path = previous


def use_fused(x01: Tensor | None = None) -> bool:
    """Whether grids take their fused ops (`grid_path`; the points' requires_grad no longer matters for the 3D op)."""
    return _path == "fused"


def encode(x01: Tensor, table: Tensor, scales: tuple[float, ...], resolutions: tuple[int, ...],
           offsets: tuple[int, ...]) -> Tensor:  # fmt: skip
    """Features [N, L * F] of points x01 [N, 3] in [0, 1] read from `table` [entries, F] (layout of GridLayout:
    level l scales by scales[l], has resolution resolutions[l] and rows offsets[l]:offsets[l + 1])."""
    return torch.ops.a124.grid_encode(
        x01.contiguous(), table.contiguous(), list(scales), list(resolutions), list(offsets)
    )


# ----------------------------------------------------------------------------- PyTorch implementation
def corners(x01: Tensor, scales: list[float], resolutions: list[int], offsets: list[int]) -> tuple[Tensor, Tensor]:
    """Rows [N, L, 8] (int32 where every value fits, else int64) and weights [N, L, 8] of every level's corners.

    Corner c = cx + 2 cy + 4 cz; row = (x + y res + z res^2) mod size + offset: `encoding.corner_lookup`'s rows
    exactly, with the products reduced mod size first, which keeps them in int32 (res^2 mod size < size).
    """
    device = x01.device
    sizes = _sizes(offsets)
    small = max(r * (z + r) + 2 * z + o for r, z, o in zip(resolutions, sizes, offsets)) < _INT32_MAX
    dtype = torch.int32 if small else torch.long
    res = torch.tensor(resolutions, dtype=dtype, device=device)  # [L]
    size = torch.tensor(sizes, dtype=dtype, device=device)
    r2 = torch.tensor([(r * r) % z for r, z in zip(resolutions, sizes)], dtype=dtype, device=device)
    offset = torch.tensor(offsets[:-1], dtype=dtype, device=device)
    corner = torch.tensor([[(c & 1), (c >> 1) & 1, (c >> 2) & 1] for c in range(8)], dtype=dtype, device=device)
    corner_offsets = corner[None, :, 0] + corner[None, :, 1] * res[:, None] + corner[None, :, 2] * r2[:, None]
    pos = x01[:, None, :] * torch.tensor(scales, dtype=x01.dtype, device=device)[None, :, None] + 0.5  # [N, L, 3]
    grid = torch.floor(pos)
    frac = pos - grid
    g = grid.to(dtype)
    base = g[..., 0] + g[..., 1] * res + torch.remainder(g[..., 2] * r2, size)  # [N, L]
    rows = torch.remainder(base[..., None] + corner_offsets, size[:, None]) + offset[:, None]  # [N, L, 8]
    wx, wy, wz = (torch.stack([1 - frac[..., d], frac[..., d]], -1) for d in range(3))  # [N, L, 2] each
    weights = ((wz[..., :, None] * wy[..., None, :]).unsqueeze(-1) * wx[..., None, None, :]).flatten(-3)
    return rows, weights


def corners_by_corner(x01: Tensor, scales: list[float], resolutions: list[int],
                      offsets: list[int]) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """`corners`' rows as [2 (z), 2 (y), 2 (x), L, N] and the per-axis weight pairs wx, wy, wz [2, L, N]: points last,
    so every op runs over contiguous runs of N (the points' backward gathers [8, L, N, F] rows)."""
    device = x01.device
    sizes = _sizes(offsets)
    small = max(r * (z + r) + 2 * z + o for r, z, o in zip(resolutions, sizes, offsets)) < _INT32_MAX
    dtype = torch.int32 if small else torch.long
    res = torch.tensor(resolutions, dtype=dtype, device=device)[:, None]  # [L, 1]
    r2 = torch.tensor([(r * r) % z for r, z in zip(resolutions, sizes)], dtype=dtype, device=device)[:, None]
    pos = x01.T[:, None, :] * torch.tensor(scales, dtype=x01.dtype, device=device)[None, :, None] + 0.5  # [3, L, N]
    grid = torch.floor(pos)
    frac = pos - grid
    g = grid.to(dtype)
    x = torch.stack([g[0], g[0] + 1])  # [2, L, N]
    y = torch.stack([g[1] * res, (g[1] + 1) * res])
    z = torch.stack([g[2] * r2, (g[2] + 1) * r2])
    size = torch.tensor(sizes, dtype=dtype, device=device)[:, None]
    rows = torch.remainder(z[:, None, None] + y[None, :, None] + x[None, None, :], size) + torch.tensor(
        offsets[:-1], dtype=dtype, device=device
    )[:, None]
    wx, wy, wz = (torch.stack([1 - frac[d], frac[d]]) for d in range(3))  # [2, L, N] each
    return rows, wx, wy, wz


def _offset(rows: Tensor, weights: Tensor, row_offset: Tensor | None) -> tuple[Tensor, Tensor]:
    """rows [N, L, 8] moved by a per-point row offset [N] (int32 stays int32 below 2^31 rows)."""
    if row_offset is None:
        return rows, weights
    return rows + row_offset.to(rows.dtype)[:, None, None], weights


def _sizes(offsets: list[int]) -> list[int]:
    return [b - a for a, b in zip(offsets[:-1], offsets[1:])]


def encode_torch(x01: Tensor, table: Tensor, scales: list[float], resolutions: list[int], offsets: list[int],
                 row_offset: Tensor | None = None) -> Tensor:  # fmt: skip
    """The op's PyTorch implementation: embedding_bag gathers and weights the 8 corners (no [N, L, 8, F]).
    row_offset [N]: added to every row of a point (one table of a batch stacked in `table`)."""
    rows, weights = _offset(*corners(x01, scales, resolutions, offsets), row_offset)
    features = torch.nn.functional.embedding_bag(
        rows.reshape(-1, 8), table, per_sample_weights=weights.reshape(-1, 8).to(table.dtype), mode="sum"
    )
    return features.reshape(x01.shape[0], -1)


def encode_backward_torch(grad_table: Tensor, grad: Tensor, x01: Tensor, scales: list[float], resolutions: list[int],
                          offsets: list[int], row_offset: Tensor | None = None) -> None:  # fmt: skip
    """Adds d(features)/d(table)^T grad into grad_table [entries, F], recomputing the corners from the points."""
    rows, weights = _offset(*corners(x01, scales, resolutions, offsets), row_offset)
    f = grad_table.shape[1]
    contribution = weights[..., None] * grad.reshape(grad.shape[0], -1, 1, f)  # [N, L, 8, F]
    # int64 indices: CPU index_add_ is several times slower with int32 ones
    grad_table.index_add_(0, rows.reshape(-1).long(), contribution.reshape(-1, f).to(grad_table.dtype))


def encode_points_backward_torch(grad: Tensor, x01: Tensor, table: Tensor, scales: list[float],
                                  resolutions: list[int], offsets: list[int]) -> Tensor:  # fmt: skip
    """d(features)/d(x01)^T grad [N, 3]: per level and corner <table row, grad> times the derivative of the corner's
    weight (the other two axes' weights, signed), times the level's scale."""
    rows, wx, wy, wz = corners_by_corner(x01, scales, resolutions, offsets)
    n, levels, f = x01.shape[0], len(scales), table.shape[1]
    per_level = grad.reshape(n, levels, f).transpose(0, 1).to(table.dtype)  # [L, N, F]
    values = table.index_select(0, rows.reshape(-1).long()).reshape(2, 2, 2, levels, n, f)
    g = (values * per_level).sum(-1)  # <row, grad> [z, y, x, L, N]
    gx = ((g[:, :, 1] - g[:, :, 0]) * wz[:, None] * wy[None]).sum((0, 1))  # [L, N]
    gy = ((g[:, 1] - g[:, 0]) * wz[:, None] * wx[None]).sum((0, 1))
    gz = ((g[1] - g[0]) * wy[:, None] * wx[None]).sum((0, 1))
    scale = torch.tensor(scales, dtype=gx.dtype, device=x01.device)[:, None]
    return torch.stack([(gx * scale).sum(0), (gy * scale).sum(0), (gz * scale).sum(0)], -1).to(x01.dtype)


# ----------------------------------------------------------------------------- the ops
@torch.library.custom_op("a124::grid_encode", mutates_args=())
def _grid_encode(x01: Tensor, table: Tensor, scales: list[float], resolutions: list[int],
                 offsets: list[int]) -> Tensor:  # fmt: skip
    return encode_torch(x01, table, scales, resolutions, offsets)


@_grid_encode.register_kernel("cuda")
def _grid_encode_cuda(x01, table, scales, resolutions, offsets):
    if triton_ready(table):
        from . import grid_triton

        return grid_triton.encode(x01, table, scales, resolutions, offsets)
    return encode_torch(x01, table, scales, resolutions, offsets)


@_grid_encode.register_fake
def _grid_encode_fake(x01, table, scales, resolutions, offsets):
    return table.new_empty(x01.shape[0], len(scales) * table.shape[1])


@torch.library.custom_op("a124::grid_encode_backward", mutates_args=("grad_table",))
def _grid_encode_backward(grad_table: Tensor, grad: Tensor, x01: Tensor, scales: list[float],
                          resolutions: list[int], offsets: list[int]) -> None:  # fmt: skip
    encode_backward_torch(grad_table, grad, x01, scales, resolutions, offsets)


@_grid_encode_backward.register_kernel("cuda")
def _grid_encode_backward_cuda(grad_table, grad, x01, scales, resolutions, offsets):
    if triton_ready(grad_table):
        from . import grid_triton

        grid_triton.encode_backward(grad_table, grad, x01, scales, resolutions, offsets)
    else:
        encode_backward_torch(grad_table, grad, x01, scales, resolutions, offsets)


@_grid_encode_backward.register_fake
def _grid_encode_backward_fake(grad_table, grad, x01, scales, resolutions, offsets):
    return None


@torch.library.custom_op("a124::grid_encode_points_backward", mutates_args=())
def _grid_encode_points_backward(grad: Tensor, x01: Tensor, table: Tensor, scales: list[float],
                                 resolutions: list[int], offsets: list[int]) -> Tensor:  # fmt: skip
    return encode_points_backward_torch(grad, x01, table, scales, resolutions, offsets)


@_grid_encode_points_backward.register_kernel("cuda")
def _grid_encode_points_backward_cuda(grad, x01, table, scales, resolutions, offsets):
    if triton_ready(table):
        from . import grid_triton

        return grid_triton.encode_points_backward(grad, x01, table, scales, resolutions, offsets)
    return encode_points_backward_torch(grad, x01, table, scales, resolutions, offsets)


@_grid_encode_points_backward.register_fake
def _grid_encode_points_backward_fake(grad, x01, table, scales, resolutions, offsets):
    return x01.new_empty(x01.shape)


def _setup_context(ctx, inputs, output) -> None:
    x01, table, scales, resolutions, offsets = inputs
    # corners are recomputed from the points: nothing [N, L, 8] is kept (the table is kept by reference only)
    ctx.save_for_backward(x01, table)
    ctx.layout = (scales, resolutions, offsets)


def _backward(ctx, grad: Tensor):
    x01, table = ctx.saved_tensors
    grad = grad.contiguous()
    grad_x01 = grad_table = None
    if ctx.needs_input_grad[0]:
        grad_x01 = _grid_encode_points_backward(grad, x01, table, *ctx.layout)
    if ctx.needs_input_grad[1]:
        grad_table = grad.new_zeros(table.shape, dtype=table.dtype)
        _grid_encode_backward(grad_table, grad, x01, *ctx.layout)
    return grad_x01, grad_table, None, None, None


_grid_encode.register_autograd(_backward, setup_context=_setup_context)


@functools.cache
def triton_available() -> bool:
    """Triton importable (torch's CUDA wheels bring it on Linux)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def triton_ready(table: Tensor) -> bool:
    """The Triton kernels take fp32 tables on CUDA."""
    return table.is_cuda and table.dtype == torch.float32 and triton_available()


__all__ = [
    "encode",
    "encode_backward_torch",
    "encode_points_backward_torch",
    "encode_torch",
    "grid_path",
    "triton_available",
    "use_fused",
]
