"""The field's grid lookup and its MLP (one hidden ReLU layer) as one fused op: points in, raw MLP outputs out.

A field evaluation as three ops writes the [N, L F] features and the [N, H] hidden layer (and the ReLU's mask),
reads them back, and its backward writes their gradients: 600+ B per point at the reference sizes (32 features,
64 hidden, fp32), 6x over for the normals' central-difference probes (BENCHMARKS.md: 'normals: MLP' was the
second largest cost of a coarse step). `a124::grid_mlp` reads the points and writes the K outputs; its backward
recomputes the features and the hidden layer from the points and returns the gradients of the table, the weights
and the biases. Implementations of the same op:
  - CUDA with Triton: `mlp_triton.py`, features and hidden layer in registers (fp32 FMAs, no tensor cores);
  - anywhere else: PyTorch, the grid op's implementation and two linear layers (nothing kept but the points).
Both equal the unfused composition (grid op, Linear, ReLU, Linear) to fp32 rounding (tests/fields/test_mlp_kernels.py).
Points that need a gradient take the composition (the deformation field's canonical lookup).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import grid_kernels


def fusable(mlp: nn.Module, x: Tensor) -> bool:
    """Whether `mlp` is Linear -> ReLU -> Linear and the fused path is on for points x (that need no gradient)."""
    return (
        grid_kernels.use_fused()
        and not x.requires_grad
        and isinstance(mlp, nn.Sequential)
        and len(mlp) == 3
        and isinstance(mlp[0], nn.Linear)
        and isinstance(mlp[1], nn.ReLU)
        and isinstance(mlp[2], nn.Linear)
    )


def grid_mlp(x01: Tensor, table: Tensor, mlp: nn.Sequential, layout, columns: int | None = None,
             frame: Tensor | None = None) -> Tensor:  # fmt: skip
    """mlp(grid features of x01 [N, 3] from `table` [entries, F])[:, :columns] [N, K] in one op (`layout`: the grid's
    GridLayout; `columns` = the first K outputs, e.g. 1 for density probes). With `frame` [N] (int), `table` is a
    batch of tables [B, entries, F] and point n reads table frame[n] (the frames of a clip in one call)."""
    k = columns or mlp[2].out_features
    first, last = mlp[0], mlp[2]
    return torch.ops.a124.grid_mlp(
        x01.to(table.dtype).contiguous(), table.contiguous(), first.weight, first.bias, last.weight[:k], last.bias[:k],
        list(layout.scales), list(layout.resolutions), list(layout.offsets),
        None if frame is None else frame.to(torch.int32).contiguous(),
    )  # fmt: skip


# ----------------------------------------------------------------------------- PyTorch implementation
def _flat(table: Tensor, frame: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """A batch of tables [B, entries, F] as one [B entries, F] and each point's row offset (frame x entries)."""
    if frame is None:
        return table, None
    return table.reshape(-1, table.shape[-1]), frame.long() * table.shape[1]


def forward_torch(x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame=None) -> tuple[Tensor, ...]:
    """(features [N, C], hidden [N, H] after the ReLU, outputs [N, K])."""
    flat, row_offset = _flat(table, frame)
    features = grid_kernels.encode_torch(x01, flat, scales, resolutions, offsets, row_offset)
    hidden = F.relu(F.linear(features, w1, b1))
    return features, hidden, F.linear(hidden, w2, b2)


def backward_torch(grad, x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame=None) -> tuple[Tensor, ...]:
    """Gradients of the table, w1, b1, w2 and b2 for outputs with gradient `grad` [N, K] (forward recomputed)."""
    features, hidden, _ = forward_torch(x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame)
    grad = grad.to(hidden.dtype)
    grad_hidden = (grad @ w2) * (hidden > 0)
    grad_table = torch.zeros_like(table)
    flat, row_offset = _flat(grad_table, frame)
    grid_kernels.encode_backward_torch(flat, grad_hidden @ w1, x01, scales, resolutions, offsets, row_offset)
    return grad_table, grad_hidden.T @ features, grad_hidden.sum(0), grad.T @ hidden, grad.sum(0)


# ----------------------------------------------------------------------------- the ops
@torch.library.custom_op("a124::grid_mlp", mutates_args=())
def _grid_mlp(x01: Tensor, table: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, scales: list[float],
              resolutions: list[int], offsets: list[int], frame: Tensor | None) -> Tensor:  # fmt: skip
    return forward_torch(x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame)[2]


@_grid_mlp.register_kernel("cuda")
def _grid_mlp_cuda(x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame):
    if triton_ready(table, w1):
        from . import mlp_triton

        return mlp_triton.forward(x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame)
    return forward_torch(x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame)[2]


@_grid_mlp.register_fake
def _grid_mlp_fake(x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame):
    return table.new_empty(x01.shape[0], w2.shape[0])


@torch.library.custom_op("a124::grid_mlp_backward", mutates_args=())
def _grid_mlp_backward(grad: Tensor, x01: Tensor, table: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor,
                       scales: list[float], resolutions: list[int], offsets: list[int],
                       frame: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    return backward_torch(grad, x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame)


@_grid_mlp_backward.register_kernel("cuda")
def _grid_mlp_backward_cuda(grad, x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame):
    if triton_ready(table, w1):
        from . import mlp_triton

        return mlp_triton.backward(grad, x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame)
    return backward_torch(grad, x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame)


@_grid_mlp_backward.register_fake
def _grid_mlp_backward_fake(grad, x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame):
    return tuple(t.new_empty(t.shape) for t in (table, w1, b1, w2, b2))


def _setup_context(ctx, inputs, output) -> None:
    x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame = inputs
    # nothing per point but the points (and their frames): the rest is recomputed
    ctx.save_for_backward(x01, table, w1, b1, w2, b2, frame)
    ctx.layout = (scales, resolutions, offsets)


def _backward(ctx, grad: Tensor):
    x01, *params, frame = ctx.saved_tensors
    grads = _grid_mlp_backward(grad.contiguous(), x01, *params, *ctx.layout, frame)
    return (None, *(g if need else None for g, need in zip(grads, ctx.needs_input_grad[1:6])), None, None, None, None)


_grid_mlp.register_autograd(_backward, setup_context=_setup_context)


def triton_ready(table: Tensor, w1: Tensor) -> bool:
    """The Triton kernels take fp32 tables and weights on CUDA, a power-of-two hidden width."""
    hidden = w1.shape[0]
    return grid_kernels.triton_ready(table) and w1.dtype == torch.float32 and hidden & (hidden - 1) == 0


__all__ = ["backward_torch", "forward_torch", "fusable", "grid_mlp", "triton_ready"]
