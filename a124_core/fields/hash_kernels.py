"""The D-dimensional hash grid encoding (`hash_encoding.HashGridEncoding`) as one fused op, like the 3D grid's.

The composition (`hash_encoding.hash_corner_lookup` + `encoding.gather_features`) writes int64 rows, weights and
gathered features for all 2^D corners of every level ([N, L, 16] and [N, L, 16, F] at D = 4) and keeps them for
the backward. `a124::hash_grid_encode` reads the points and writes the features; its backward recomputes the
corners from the points and scatters the gradient into the table. Implementations of the same op:
  - CUDA with Triton: `hash_triton.py`, one program per block of points and level, corners in registers;
  - anywhere else (CPU, CUDA without Triton): PyTorch, embedding_bag for the weighted gather (no [N, L, 2^D, F]
    tensor) and nothing kept for the backward but the points.
Both take the composition's rows and weights exactly (tests/fields/test_hash_kernels.py). A level is described
by its scale, its table rows offsets[l]:offsets[l + 1] and D strides: r^d for dense levels, whose index is
sum_d c_d r^d, tcnn's primes for hashed ones (levels >= num_dense), whose index is xor_d c_d pi_d; either taken
modulo the level's size. Gradients w.r.t. the points are not part of the op: points that require grad (none in
training: the deformation field's inputs are sample positions and times) take the composition.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import grid_kernels


def encode(u: Tensor, table: Tensor, scales: tuple[float, ...], strides: tuple[int, ...], offsets: tuple[int, ...],
           num_dense: int) -> Tensor:  # fmt: skip
    """Features [N, L * F] of points u [N, D] in [0, 1]^D read from `table` [entries, F]; strides is [L * D]
    flattened (level-major)."""
    return torch.ops.a124.hash_grid_encode(
        u.contiguous(), table.contiguous(), list(scales), list(strides), list(offsets), num_dense
    )


# ----------------------------------------------------------------------------- PyTorch implementation
def _corner_terms(cells: Tensor, stride: Tensor, xor: bool) -> Tensor:
    """Index [2^D, L, N] of all corners from the scaled cells g_d stride_d [D, L, N] and strides [D, L]: the dense
    index sum_d (g_d + c_d) stride_d, or with `xor` the hash xor_d (g_d + c_d) pi_d. Corner k's offset along dim
    d is bit d of k (the new dim becomes the most significant bit at each step). Points last: every op runs over
    contiguous runs of N (on a CPU, [N, L, 16] tensors with 2-16 wide inner dims ran 3x slower)."""
    out = None
    for d in range(cells.shape[0]):
        pair = torch.stack([cells[d], cells[d] + stride[d, :, None]])  # [2, L, N]
        if out is None:
            out = pair
        elif xor:
            out = torch.bitwise_xor(pair[:, None], out[None]).flatten(0, 1)
        else:
            out = (pair[:, None] + out[None]).flatten(0, 1)
    return out


def corners_by_corner(u: Tensor, scales: list[float], strides: list[int], offsets: list[int],
                      num_dense: int) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Rows [2^D, L, N] (int32, level offsets included) and multilinear weights [2^D, L, N] (u's dtype).

    int32 throughout: a dense level's index is below twice its size (one conditional subtraction wraps it); a hashed
    level has 2^k rows, and since the mask distributes over xor and the low bits of a product depend only on the
    low bits of its factors, its row is xor_d ((g_d + c_d) (pi_d & mask)) & mask, every product below 2^31 for cells
    in range: tcnn's uint32 hash, row for row.
    """
    device, dims, levels = u.device, u.shape[1], len(scales)
    sizes = [b - a for a, b in zip(offsets[:-1], offsets[1:])]
    low = [s if i // dims < num_dense else s & (sizes[i // dims] - 1) for i, s in enumerate(strides)]
    stride = torch.tensor(low, dtype=torch.int32, device=device).reshape(levels, dims).T.contiguous()  # [D, L]
    pos = u.T[:, None, :] * torch.tensor(scales, dtype=u.dtype, device=device)[None, :, None] + 0.5  # [D, L, N]
    grid = torch.floor(pos)
    frac = pos - grid
    cells = grid.to(torch.int32) * stride[..., None]
    parts = []
    if num_dense:
        parts.append(_corner_terms(cells[:, :num_dense], stride[:, :num_dense], xor=False))
    if num_dense < levels:
        parts.append(_corner_terms(cells[:, num_dense:], stride[:, num_dense:], xor=True))
    index = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
    size = torch.tensor(sizes, dtype=torch.int32, device=device)[None, :, None]
    if num_dense:
        dense = index[:, :num_dense]
        dense -= size[:, :num_dense] * (dense >= size[:, :num_dense])
    if num_dense < levels:
        index[:, num_dense:] &= size[:, num_dense:] - 1
    index += torch.tensor(offsets[:-1], dtype=torch.int32, device=device)[None, :, None]
    weights = None
    for d in range(dims):
        pair = torch.stack([1 - frac[d], frac[d]])  # [2, L, N]
        weights = pair if weights is None else (pair[:, None] * weights[None]).flatten(0, 1)
    return index, weights


def corners(u: Tensor, scales: list[float], strides: list[int], offsets: list[int],
            num_dense: int) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Rows [N, L, 2^D] (int64, level offsets included) and weights [N, L, 2^D] (u's dtype) of every level's
    corners; dense levels (the first num_dense) come before hashed ones."""
    rows, weights = corners_by_corner(u, scales, strides, offsets, num_dense)
    return rows.permute(2, 1, 0).long(), weights.permute(2, 1, 0)


def encode_torch(u: Tensor, table: Tensor, scales: list[float], strides: list[int], offsets: list[int],
                 num_dense: int) -> Tensor:  # fmt: skip
    """The op's PyTorch implementation: embedding_bag gathers and weights the 2^D corners (no [N, L, 2^D, F])."""
    rows, weights = corners_by_corner(u, scales, strides, offsets, num_dense)
    k = rows.shape[0]
    features = torch.nn.functional.embedding_bag(
        rows.permute(2, 1, 0).reshape(-1, k),
        table,
        per_sample_weights=weights.permute(2, 1, 0).reshape(-1, k).to(table.dtype),
        mode="sum",
    )
    return features.reshape(u.shape[0], -1)


def encode_backward_torch(grad_table: Tensor, grad: Tensor, u: Tensor, scales: list[float], strides: list[int],
                          offsets: list[int], num_dense: int) -> None:  # fmt: skip
    """Adds d(features)/d(table)^T grad into grad_table [entries, F], recomputing the corners from the points."""
    rows, weights = corners_by_corner(u, scales, strides, offsets, num_dense)
    n, f = u.shape[0], grad_table.shape[1]
    per_level = grad.reshape(n, -1, f).transpose(0, 1).to(grad_table.dtype)  # [L, N, F]
    contribution = weights.to(grad_table.dtype)[..., None] * per_level[None]  # [2^D, L, N, F]
    # int64 indices: CPU index_add_ is several times slower with int32 ones. Rows are added corner by corner, not
    # point by point as the composition's backward adds them: equal to rounding (exact in float64, tested)
    grad_table.index_add_(0, rows.reshape(-1).long(), contribution.reshape(-1, f))


# ----------------------------------------------------------------------------- the ops
@torch.library.custom_op("a124::hash_grid_encode", mutates_args=())
def _hash_encode(u: Tensor, table: Tensor, scales: list[float], strides: list[int], offsets: list[int],
                 num_dense: int) -> Tensor:  # fmt: skip
    return encode_torch(u, table, scales, strides, offsets, num_dense)


@_hash_encode.register_kernel("cuda")
def _hash_encode_cuda(u, table, scales, strides, offsets, num_dense):
    if grid_kernels.triton_ready(table):
        from . import hash_triton

        return hash_triton.encode(u, table, scales, strides, offsets, num_dense)
    return encode_torch(u, table, scales, strides, offsets, num_dense)


@_hash_encode.register_fake
def _hash_encode_fake(u, table, scales, strides, offsets, num_dense):
    return table.new_empty(u.shape[0], len(scales) * table.shape[1])


@torch.library.custom_op("a124::hash_grid_encode_backward", mutates_args=("grad_table",))
def _hash_encode_backward(grad_table: Tensor, grad: Tensor, u: Tensor, scales: list[float], strides: list[int],
                          offsets: list[int], num_dense: int) -> None:  # fmt: skip
    encode_backward_torch(grad_table, grad, u, scales, strides, offsets, num_dense)


@_hash_encode_backward.register_kernel("cuda")
def _hash_encode_backward_cuda(grad_table, grad, u, scales, strides, offsets, num_dense):
    if grid_kernels.triton_ready(grad_table):
        from . import hash_triton

        hash_triton.encode_backward(grad_table, grad, u, scales, strides, offsets, num_dense)
    else:
        encode_backward_torch(grad_table, grad, u, scales, strides, offsets, num_dense)


@_hash_encode_backward.register_fake
def _hash_encode_backward_fake(grad_table, grad, u, scales, strides, offsets, num_dense):
    return None


def _setup_context(ctx, inputs, output) -> None:
    u, table, scales, strides, offsets, num_dense = inputs
    ctx.save_for_backward(u)  # corners are recomputed from the points: nothing [N, L, 2^D] is kept
    ctx.table_meta = (table.shape, table.dtype)
    ctx.layout = (scales, strides, offsets, num_dense)


def _backward(ctx, grad: Tensor):
    (u,) = ctx.saved_tensors
    grad_table = None
    if ctx.needs_input_grad[1]:
        shape, dtype = ctx.table_meta
        grad_table = grad.new_zeros(shape, dtype=dtype)
        _hash_encode_backward(grad_table, grad.contiguous(), u, *ctx.layout)
    return None, grad_table, None, None, None, None


_hash_encode.register_autograd(_backward, setup_context=_setup_context)


__all__ = ["corners", "corners_by_corner", "encode", "encode_backward_torch", "encode_torch"]
