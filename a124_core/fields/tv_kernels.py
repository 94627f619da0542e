"""The 4D grid's temporal TV sum (paper Eq. 2) as one fused op: points and knot tables in, a scalar out.

sum_i sum_x |V_i(x) - V_{i+1}(x)|^2 as T - 1 grid lookups writes a [T - 1, entries, F] difference table, then per
knot pair a feature tensor, its square and their gradients: ~700 kernels and 16 GB per step at the paper's 64
knots and 1e5 points (BENCHMARKS.md, 'temporal TV: grid'). `a124::grid_temporal_tv` reads the points and the knot
tables and returns the sum; its backward recomputes the differences and scatters +-2 diff into the two knots of
each pair. Implementations of the same op:
  - CUDA with Triton: `tv_triton.py`, one program per block of points and knot pair (pairs outermost in the launch
    order, so the two tables a pair reads stay in L2);
  - anywhere else: PyTorch, the corners computed once for all knots and one weighted gather per knot.
Both equal the per-pair composition (tests/fields/test_tv_kernels.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import grid_kernels


def temporal_tv_sum(x01: Tensor, tables: Tensor, layout) -> Tensor:
    """sum over knot pairs, points x01 [N, 3] and features of (E(V_i) - E(V_{i+1}))^2, tables [T, entries, F]."""
    return torch.ops.a124.grid_temporal_tv(
        x01.to(tables.dtype).contiguous(), tables.contiguous(), list(layout.scales), list(layout.resolutions),
        list(layout.offsets),
    )  # fmt: skip


# ----------------------------------------------------------------------------- PyTorch implementation
def _knot_features(x01: Tensor, tables: Tensor, scales, resolutions, offsets) -> Tensor:
    """E(V_i)(x) for every knot [T, N, C], the corners computed once."""
    rows, weights = grid_kernels.corners(x01, scales, resolutions, offsets)
    knots, entries, f = tables.shape
    rows = rows.reshape(1, -1, 8).long() + torch.arange(knots, device=x01.device)[:, None, None] * entries
    out = torch.nn.functional.embedding_bag(
        rows.reshape(-1, 8), tables.reshape(-1, f), mode="sum",
        per_sample_weights=weights.reshape(1, -1, 8).expand(knots, -1, -1).reshape(-1, 8).to(tables.dtype),
    )  # fmt: skip
    return out.reshape(knots, x01.shape[0], -1)


def forward_torch(x01: Tensor, tables: Tensor, scales, resolutions, offsets) -> Tensor:
    features = _knot_features(x01, tables, scales, resolutions, offsets)
    return (features[:-1] - features[1:]).square().sum()


def backward_torch(grad: Tensor, x01: Tensor, tables: Tensor, scales, resolutions, offsets) -> Tensor:
    """d(sum)/d(tables) [T, entries, F] times the scalar `grad`."""
    features = _knot_features(x01, tables, scales, resolutions, offsets)
    diff = 2 * grad.to(features.dtype) * (features[:-1] - features[1:])  # [T - 1, N, C]
    per_knot = torch.zeros_like(features)
    per_knot[:-1] += diff
    per_knot[1:] -= diff
    grad_tables = torch.zeros_like(tables)
    for knot in range(tables.shape[0]):
        grid_kernels.encode_backward_torch(grad_tables[knot], per_knot[knot], x01, scales, resolutions, offsets)
    return grad_tables


# ----------------------------------------------------------------------------- the ops
@torch.library.custom_op("a124::grid_temporal_tv", mutates_args=())
def _tv(x01: Tensor, tables: Tensor, scales: list[float], resolutions: list[int], offsets: list[int]) -> Tensor:
    return forward_torch(x01, tables, scales, resolutions, offsets)


@_tv.register_kernel("cuda")
def _tv_cuda(x01, tables, scales, resolutions, offsets):
    if grid_kernels.triton_ready(tables):
        from . import tv_triton

        return tv_triton.forward(x01, tables, scales, resolutions, offsets)
    return forward_torch(x01, tables, scales, resolutions, offsets)


@_tv.register_fake
def _tv_fake(x01, tables, scales, resolutions, offsets):
    return tables.new_empty(())


@torch.library.custom_op("a124::grid_temporal_tv_backward", mutates_args=())
def _tv_backward(grad: Tensor, x01: Tensor, tables: Tensor, scales: list[float], resolutions: list[int],
                 offsets: list[int]) -> Tensor:  # fmt: skip
    return backward_torch(grad, x01, tables, scales, resolutions, offsets)


@_tv_backward.register_kernel("cuda")
def _tv_backward_cuda(grad, x01, tables, scales, resolutions, offsets):
    if grid_kernels.triton_ready(tables):
        from . import tv_triton

        return tv_triton.backward(grad, x01, tables, scales, resolutions, offsets)
    return backward_torch(grad, x01, tables, scales, resolutions, offsets)


@_tv_backward.register_fake
def _tv_backward_fake(grad, x01, tables, scales, resolutions, offsets):
    return tables.new_empty(tables.shape)


def _setup_context(ctx, inputs, output) -> None:
    x01, tables, scales, resolutions, offsets = inputs
    ctx.save_for_backward(x01, tables)
    ctx.layout = (scales, resolutions, offsets)


def _backward(ctx, grad: Tensor):
    x01, tables = ctx.saved_tensors
    grad_tables = _tv_backward(grad, x01, tables, *ctx.layout) if ctx.needs_input_grad[1] else None
    return None, grad_tables, None, None, None


_tv.register_autograd(_backward, setup_context=_setup_context)


__all__ = ["backward_torch", "forward_torch", "temporal_tv_sum"]
