"""Triton kernels of the fused hash grid op (`hash_kernels.py`): the CUDA implementation of `a124::hash_grid_encode`.

One program handles BLOCK points of one level: it reads the D coordinates, computes each of the 2^D corners' row
(int64: the dense index sum_d c_d r^d or the hash xor_d c_d pi_d, modulo the level's size: `hash_kernels.corners`
exactly) and multilinear weight in registers, gathers the F features of each corner and writes the level's F
output features. The backward program recomputes the same corners and atomically adds weight * grad into the
table gradient. Per point and level the forward moves D x 4 B of point (cached across levels), 2^D F x 4 B of
gathered rows (L2-resident at the paper's 30 MB table) and F x 4 B of output.

Imported only where Triton runs: on CUDA, or on CPU tensors through Triton's interpreter (TRITON_INTERPRET=1,
set before this module is imported), which is how tests/fields/test_hash_kernels.py checks it against PyTorch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

BLOCK = 128


@triton.jit
def _corner(u_ptr, idx, mask, scale, level, strides_ptr, hashed, D: tl.constexpr, c: tl.constexpr):
    """Index (before the modulo; int64) and weight of corner c at this level for the points idx."""
    index = tl.zeros(idx.shape, dtype=tl.int64)
    weight = tl.full(idx.shape, 1.0, dtype=tl.float32)
    for d in tl.static_range(D):
        bit: tl.constexpr = (c >> d) & 1
        p = tl.load(u_ptr + idx * D + d, mask=mask, other=0.0).to(tl.float32) * scale + 0.5
        g = tl.floor(p)
        f = p - g
        term = (g.to(tl.int64) + bit) * tl.load(strides_ptr + level * D + d)
        if d == 0:
            index = term
            weight = f * bit + (1.0 - f) * (1 - bit)  # exact: x * 1 + y * 0 == x
        else:
            index = tl.where(hashed, index ^ term, index + term)
            weight = weight * (f * bit + (1.0 - f) * (1 - bit))
    return index, weight


@triton.jit
def _level(offsets_ptr, level, num_dense, n, F: tl.constexpr, FP: tl.constexpr, L: tl.constexpr,
           BLOCK: tl.constexpr):  # fmt: skip
    """This program's points, the offsets and mask of their [BLOCK, FP] features (at this level, in [N, L * F]), and
    the level's table offset, size and whether it is hashed."""
    idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = idx < n
    feat = tl.arange(0, FP)
    fmask = mask[:, None] & (feat[None, :] < F)
    out_offsets = idx[:, None] * (L * F) + level * F + feat[None, :]
    offset = tl.load(offsets_ptr + level)
    size = tl.load(offsets_ptr + level + 1) - offset
    return idx, mask, feat, fmask, out_offsets, offset, size, level >= num_dense


@triton.jit
def _encode_kernel(u_ptr, table_ptr, out_ptr, scales_ptr, strides_ptr, offsets_ptr, num_dense, n,
                   D: tl.constexpr, F: tl.constexpr, FP: tl.constexpr, L: tl.constexpr,
                   BLOCK: tl.constexpr):  # fmt: skip
    level = tl.program_id(1)
    idx, mask, feat, fmask, out_offsets, offset, size, hashed = _level(offsets_ptr, level, num_dense, n, F, FP, L,
                                                                      BLOCK)  # fmt: skip
    scale = tl.load(scales_ptr + level)
    acc = tl.zeros([BLOCK, FP], dtype=tl.float32)
    for c in tl.static_range(2**D):
        index, w = _corner(u_ptr, idx, mask, scale, level, strides_ptr, hashed, D, c)
        row = index % size + offset
        values = tl.load(table_ptr + row[:, None] * F + feat[None, :], mask=fmask, other=0.0)
        acc += w[:, None] * values
    tl.store(out_ptr + out_offsets, acc, mask=fmask)


@triton.jit
def _encode_backward_kernel(u_ptr, grad_ptr, grad_table_ptr, scales_ptr, strides_ptr, offsets_ptr, num_dense, n,
                            D: tl.constexpr, F: tl.constexpr, FP: tl.constexpr, L: tl.constexpr,
                            BLOCK: tl.constexpr):  # fmt: skip
    level = tl.program_id(1)
    idx, mask, feat, fmask, out_offsets, offset, size, hashed = _level(offsets_ptr, level, num_dense, n, F, FP, L,
                                                                      BLOCK)  # fmt: skip
    scale = tl.load(scales_ptr + level)
    grad = tl.load(grad_ptr + out_offsets, mask=fmask, other=0.0)
    for c in tl.static_range(2**D):
        index, w = _corner(u_ptr, idx, mask, scale, level, strides_ptr, hashed, D, c)
        row = index % size + offset
        tl.atomic_add(grad_table_ptr + row[:, None] * F + feat[None, :], w[:, None] * grad, mask=fmask)


def _layout_tensors(scales, strides, offsets, device) -> tuple[Tensor, Tensor, Tensor]:
    return (
        torch.tensor(scales, dtype=torch.float32, device=device),
        torch.tensor(strides, dtype=torch.int64, device=device),
        torch.tensor(offsets, dtype=torch.int64, device=device),
    )


def _launch(kernel, u: Tensor, first: Tensor, second: Tensor, scales, strides, offsets, num_dense: int, f: int):
    n, dims, levels = u.shape[0], u.shape[1], len(scales)
    s, st, o = _layout_tensors(scales, strides, offsets, u.device)
    grid = (triton.cdiv(n, BLOCK), levels)
    kernel[grid](u, first, second, s, st, o, num_dense, n, D=dims, F=f, FP=triton.next_power_of_2(f), L=levels,
                 BLOCK=BLOCK)  # fmt: skip


def encode(u: Tensor, table: Tensor, scales, strides, offsets, num_dense: int) -> Tensor:
    """Features [N, L * F] (fp32) of points u [N, D] from an fp32 table [entries, F]."""
    f = table.shape[1]
    out = torch.empty(u.shape[0], len(scales) * f, dtype=torch.float32, device=table.device)
    _launch(_encode_kernel, u, table, out, scales, strides, offsets, num_dense, f)
    return out


def encode_backward(grad_table: Tensor, grad: Tensor, u: Tensor, scales, strides, offsets, num_dense: int) -> None:
    """Adds the table gradient of features with gradient `grad` [N, L * F] into grad_table [entries, F] (fp32)."""
    _launch(_encode_backward_kernel, u, grad.float(), grad_table, scales, strides, offsets, num_dense,
            grad_table.shape[1])  # fmt: skip


__all__ = ["BLOCK", "encode", "encode_backward"]
