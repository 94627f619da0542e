"""Triton kernels of the fused grid op (`grid_kernels.py`): the CUDA implementation of `a124::grid_encode`.

One program handles BLOCK points of one level: it reads the points, computes the 8 corner rows and trilinear
weights in registers (int64 arithmetic, the rows of `encoding.corner_lookup` exactly), gathers the F features
of each corner from the table and writes the level's F output features. The backward program recomputes the
same corners and atomically adds weight * grad into the table gradient. Per sample and level the forward moves
12 B of point (cached across levels), 8 F x 4 B of gathered rows (L2-resident tables) and F x 4 B of output.

Imported only where Triton runs: on CUDA, or on CPU tensors through Triton's interpreter (TRITON_INTERPRET=1,
set before this module is imported), which is how tests/fields/test_grid_kernels.py checks it against PyTorch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

BLOCK = 128


@triton.jit
def _cell(x_ptr, idx, mask, scale, d: tl.constexpr):
    """Cell (int64) and fraction along axis d of the points idx at a level of this scale."""
    p = tl.load(x_ptr + idx * 3 + d, mask=mask, other=0.0).to(tl.float32) * scale + 0.5
    g = tl.floor(p)
    return g.to(tl.int64), p - g


@triton.jit
def _corner(ix, iy, iz, fx, fy, fz, res, offset, size, c: tl.constexpr):
    """Row (int64) and trilinear weight of corner c = cx + 2 cy + 4 cz: the composition's, op for op."""
    cx: tl.constexpr = c & 1
    cy: tl.constexpr = (c >> 1) & 1
    cz: tl.constexpr = (c >> 2) & 1
    wx = fx * cx + (1.0 - fx) * (1 - cx)  # exact: x * 1 + y * 0 == x
    wy = fy * cy + (1.0 - fy) * (1 - cy)
    wz = fz * cz + (1.0 - fz) * (1 - cz)
    row = ((ix + cx) + (iy + cy) * res + (iz + cz) * res * res) % size + offset
    return row, (wz * wy) * wx


@triton.jit
def _level_cell(x_ptr, idx, mask, scales_ptr, res_ptr, offsets_ptr, level):
    """`level`'s scale, resolution, table offset and size, and each point's cell and fraction along x, y, z."""
    scale = tl.load(scales_ptr + level)
    res = tl.load(res_ptr + level)
    offset = tl.load(offsets_ptr + level)
    size = tl.load(offsets_ptr + level + 1) - offset
    ix, fx = _cell(x_ptr, idx, mask, scale, 0)
    iy, fy = _cell(x_ptr, idx, mask, scale, 1)
    iz, fz = _cell(x_ptr, idx, mask, scale, 2)
    return scale, res, offset, size, ix, iy, iz, fx, fy, fz


@triton.jit
def _level(x_ptr, scales_ptr, res_ptr, offsets_ptr, n, F: tl.constexpr, FP: tl.constexpr, L: tl.constexpr,
           BLOCK: tl.constexpr):  # fmt: skip
    """This program's points, the offsets and mask of their [BLOCK, FP] features (at this level, in [N, L * F]),
    and the level's cell coordinates and layout."""
    level = tl.program_id(1)
    idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = idx < n
    feat = tl.arange(0, FP)
    fmask = mask[:, None] & (feat[None, :] < F)
    out_offsets = idx[:, None] * (L * F) + level * F + feat[None, :]
    scale, res, offset, size, ix, iy, iz, fx, fy, fz = _level_cell(
        x_ptr, idx, mask, scales_ptr, res_ptr, offsets_ptr, level
    )
    return feat, fmask, out_offsets, res, offset, size, ix, iy, iz, fx, fy, fz


@triton.jit
def _encode_kernel(x_ptr, table_ptr, out_ptr, scales_ptr, res_ptr, offsets_ptr, n,
                   F: tl.constexpr, FP: tl.constexpr, L: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    feat, fmask, out_offsets, res, offset, size, ix, iy, iz, fx, fy, fz = _level(
        x_ptr, scales_ptr, res_ptr, offsets_ptr, n, F, FP, L, BLOCK
    )
    acc = tl.zeros([BLOCK, FP], dtype=tl.float32)
    for c in tl.static_range(8):
        row, w = _corner(ix, iy, iz, fx, fy, fz, res, offset, size, c)
        values = tl.load(table_ptr + row[:, None] * F + feat[None, :], mask=fmask, other=0.0)
        acc += w[:, None] * values
    tl.store(out_ptr + out_offsets, acc, mask=fmask)


@triton.jit
def _encode_backward_kernel(x_ptr, grad_ptr, grad_table_ptr, scales_ptr, res_ptr, offsets_ptr, n,
                            F: tl.constexpr, FP: tl.constexpr, L: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    feat, fmask, out_offsets, res, offset, size, ix, iy, iz, fx, fy, fz = _level(
        x_ptr, scales_ptr, res_ptr, offsets_ptr, n, F, FP, L, BLOCK
    )
    grad = tl.load(grad_ptr + out_offsets, mask=fmask, other=0.0)
    for c in tl.static_range(8):
        row, w = _corner(ix, iy, iz, fx, fy, fz, res, offset, size, c)
        tl.atomic_add(grad_table_ptr + row[:, None] * F + feat[None, :], w[:, None] * grad, mask=fmask)


@triton.jit
def _encode_points_backward_kernel(x_ptr, grad_ptr, table_ptr, out_ptr, scales_ptr, res_ptr, offsets_ptr, n,
                                   F: tl.constexpr, FP: tl.constexpr, L: tl.constexpr,
                                   BLOCK: tl.constexpr):  # fmt: skip
    idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = idx < n
    feat = tl.arange(0, FP)
    fmask = mask[:, None] & (feat[None, :] < F)
    gx = tl.zeros([BLOCK], dtype=tl.float32)
    gy = tl.zeros([BLOCK], dtype=tl.float32)
    gz = tl.zeros([BLOCK], dtype=tl.float32)
    for level in range(L):
        scale, res, offset, size, ix, iy, iz, fx, fy, fz = _level_cell(
            x_ptr, idx, mask, scales_ptr, res_ptr, offsets_ptr, level
        )
        grad = tl.load(grad_ptr + idx[:, None] * (L * F) + level * F + feat[None, :], mask=fmask, other=0.0)
        for c in tl.static_range(8):
            cx: tl.constexpr = c & 1
            cy: tl.constexpr = (c >> 1) & 1
            cz: tl.constexpr = (c >> 2) & 1
            row, _w = _corner(ix, iy, iz, fx, fy, fz, res, offset, size, c)
            values = tl.load(table_ptr + row[:, None] * F + feat[None, :], mask=fmask, other=0.0)
            g = tl.sum(values * grad, 1) * scale
            wx = fx * cx + (1.0 - fx) * (1 - cx)
            wy = fy * cy + (1.0 - fy) * (1 - cy)
            wz = fz * cz + (1.0 - fz) * (1 - cz)
            gx += g * (2 * cx - 1) * (wz * wy)
            gy += g * (2 * cy - 1) * (wz * wx)
            gz += g * (2 * cz - 1) * (wy * wx)
    tl.store(out_ptr + idx * 3, gx, mask=mask)
    tl.store(out_ptr + idx * 3 + 1, gy, mask=mask)
    tl.store(out_ptr + idx * 3 + 2, gz, mask=mask)


def _layout_tensors(scales, resolutions, offsets, device) -> tuple[Tensor, Tensor, Tensor]:
    return (
        torch.tensor(scales, dtype=torch.float32, device=device),
        torch.tensor(resolutions, dtype=torch.int64, device=device),
        torch.tensor(offsets, dtype=torch.int64, device=device),
    )


def encode(x01: Tensor, table: Tensor, scales, resolutions, offsets) -> Tensor:
    """Features [N, L * F] (fp32) of points x01 [N, 3] from an fp32 table [entries, F]."""
    n, f, levels = x01.shape[0], table.shape[1], len(scales)
    out = torch.empty(n, levels * f, dtype=torch.float32, device=table.device)
    s, r, o = _layout_tensors(scales, resolutions, offsets, table.device)
    grid = (triton.cdiv(n, BLOCK), levels)
    _encode_kernel[grid](x01, table, out, s, r, o, n, F=f, FP=triton.next_power_of_2(f), L=levels, BLOCK=BLOCK)
    return out


def encode_backward(grad_table: Tensor, grad: Tensor, x01: Tensor, scales, resolutions, offsets) -> None:
    """Adds the table gradient of features with gradient `grad` [N, L * F] into grad_table [entries, F] (fp32)."""
    n, f, levels = x01.shape[0], grad_table.shape[1], len(scales)
    s, r, o = _layout_tensors(scales, resolutions, offsets, grad_table.device)
    grid = (triton.cdiv(n, BLOCK), levels)
    _encode_backward_kernel[grid](x01, grad.float(), grad_table, s, r, o, n, F=f, FP=triton.next_power_of_2(f),
                                  L=levels, BLOCK=BLOCK)  # fmt: skip


def encode_points_backward(grad: Tensor, x01: Tensor, table: Tensor, scales, resolutions, offsets) -> Tensor:
    """d(features)/d(x01)^T grad [N, 3] (fp32) for features with gradient `grad` [N, L * F] of an fp32 table."""
    n, f, levels = x01.shape[0], table.shape[1], len(scales)
    out = torch.empty(n, 3, dtype=torch.float32, device=table.device)
    s, r, o = _layout_tensors(scales, resolutions, offsets, table.device)
    _encode_points_backward_kernel[(triton.cdiv(n, BLOCK),)](x01, grad.float(), table, out, s, r, o, n, F=f,
                                                           FP=triton.next_power_of_2(f), L=levels,
                                                           BLOCK=BLOCK)  # fmt: skip
    return out.to(x01.dtype)


__all__ = ["BLOCK", "encode", "encode_backward", "encode_points_backward"]
