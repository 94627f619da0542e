"""Triton kernels of the fused temporal TV op (`tv_kernels.py`): the CUDA implementation of `a124::grid_temporal_tv`.

One program handles BLOCK points of one level and one knot pair (i, i + 1): the 8 corners in registers
(`grid_triton`'s arithmetic), the two knots' rows gathered and differenced, the squares summed into the scalar
(atomic). The backward program recomputes the difference and adds +-2 grad diff w into both knots' rows. The launch
grid puts the point blocks innermost, so the two tables of a pair are read from L2 while every block of the pair
runs.

Imported only where Triton runs: on CUDA, or on CPU tensors through Triton's interpreter (TRITON_INTERPRET=1),
which is how tests/fields/test_tv_kernels.py checks it against PyTorch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .grid_triton import _corner, _level

BLOCK = 128


@triton.jit
def _pair_difference(x_ptr, tables_ptr, scales_ptr, res_ptr, offsets_ptr, n, entries,
                     F: tl.constexpr, FP: tl.constexpr, L: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    """This program's knot pair and level: the points' cells (the backward scatters into them) and the trilinear
    features of knot `pair` minus those of the next knot [BLOCK, FP] (tables are stacked by knot)."""
    pair = tl.program_id(2)
    feat, fmask, _, res, offset, size, ix, iy, iz, fx, fy, fz = _level(x_ptr, scales_ptr, res_ptr, offsets_ptr, n, F,
                                                                       FP, L, BLOCK)  # fmt: skip
    diff = tl.zeros([BLOCK, FP], dtype=tl.float32)
    first = tables_ptr + pair * entries * F
    for c in tl.static_range(8):
        row, w = _corner(ix, iy, iz, fx, fy, fz, res, offset, size, c)
        at = row[:, None] * F + feat[None, :]
        a = tl.load(first + at, mask=fmask, other=0.0)
        b = tl.load(first + entries * F + at, mask=fmask, other=0.0)
        diff += w[:, None] * (a - b)
    return pair, feat, fmask, res, offset, size, ix, iy, iz, fx, fy, fz, diff


@triton.jit
def _forward_kernel(x_ptr, tables_ptr, out_ptr, scales_ptr, res_ptr, offsets_ptr, n, entries,
                    F: tl.constexpr, FP: tl.constexpr, L: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    diff = _pair_difference(x_ptr, tables_ptr, scales_ptr, res_ptr, offsets_ptr, n, entries, F, FP, L, BLOCK)[12]
    tl.atomic_add(out_ptr, tl.sum(tl.sum(diff * diff, 1), 0))


@triton.jit
def _backward_kernel(grad_ptr, x_ptr, tables_ptr, g_tables_ptr, scales_ptr, res_ptr, offsets_ptr, n, entries,
                     F: tl.constexpr, FP: tl.constexpr, L: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    pair, feat, fmask, res, offset, size, ix, iy, iz, fx, fy, fz, diff = _pair_difference(
        x_ptr, tables_ptr, scales_ptr, res_ptr, offsets_ptr, n, entries, F, FP, L, BLOCK
    )
    diff = 2.0 * tl.load(grad_ptr) * diff
    g_first = g_tables_ptr + pair * entries * F
    for c in tl.static_range(8):
        row, w = _corner(ix, iy, iz, fx, fy, fz, res, offset, size, c)
        at = row[:, None] * F + feat[None, :]
        tl.atomic_add(g_first + at, w[:, None] * diff, mask=fmask)
        tl.atomic_add(g_first + entries * F + at, -w[:, None] * diff, mask=fmask)


def _launch(kernel, x01: Tensor, tables: Tensor, scales, resolutions, offsets, *buffers) -> None:
    n, (knots, entries, f), levels = x01.shape[0], tables.shape, len(scales)
    s = torch.tensor(scales, dtype=torch.float32, device=tables.device)
    r = torch.tensor(resolutions, dtype=torch.int64, device=tables.device)
    o = torch.tensor(offsets, dtype=torch.int64, device=tables.device)
    grid = (triton.cdiv(n, BLOCK), levels, knots - 1)
    kernel[grid](*buffers, s, r, o, n, entries, F=f, FP=triton.next_power_of_2(f), L=levels, BLOCK=BLOCK)


def forward(x01: Tensor, tables: Tensor, scales, resolutions, offsets) -> Tensor:
    """The TV sum (fp32 scalar) of points x01 [N, 3] over fp32 knot tables [T, entries, F]."""
    out = torch.zeros((), dtype=torch.float32, device=tables.device)
    if tables.shape[0] > 1:
        _launch(_forward_kernel, x01, tables, scales, resolutions, offsets, x01, tables, out)
    return out


def backward(grad: Tensor, x01: Tensor, tables: Tensor, scales, resolutions, offsets) -> Tensor:
    """d(sum)/d(tables) [T, entries, F] times the scalar `grad`."""
    grad_tables = torch.zeros_like(tables, dtype=torch.float32)
    if tables.shape[0] > 1:
        _launch(_backward_kernel, x01, tables, scales, resolutions, offsets, grad.float().reshape(1), x01, tables,
                grad_tables)  # fmt: skip
    return grad_tables


__all__ = ["BLOCK", "backward", "forward"]
