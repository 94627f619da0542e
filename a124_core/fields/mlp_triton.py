"""Triton kernels of the fused grid + MLP op (`mlp_kernels.py`): the CUDA implementation of `a124::grid_mlp`.

One program handles BLOCK points: level by level it computes the 8 corners of each point (`grid_triton`'s
arithmetic, the composition's rows exactly), gathers and weights their F features and adds feature x W1 column
into the hidden layer [BLOCK, H] (fp32 FMAs); then the ReLU and the K output rows of W2. The backward program
recomputes the hidden layer, forms the hidden gradient, and walks the levels again to recompute each feature,
add its W1 and table gradients (atomics) and the biases'. Per point the forward reads 12 B of point and writes
4 K B; the features and the hidden layer never reach memory. With a frame index per point, table rows are read from
the point's table of a batch [B, entries, F] (row + frame x entries).

Imported only where Triton runs: on CUDA, or on CPU tensors through Triton's interpreter (TRITON_INTERPRET=1),
which is how tests/fields/test_mlp_kernels.py checks it against PyTorch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .grid_triton import _corner, _level_cell

BLOCK = 64


@triton.jit
def _feature(x_ptr, table_ptr, idx, mask, base, level, scales_ptr, res_ptr, offsets_ptr, F: tl.constexpr,
             f: tl.constexpr):  # fmt: skip
    """Feature f of `level` at the points idx: the trilinear sum over the 8 corners' table rows (+ base, the first
    row of each point's table)."""
    scale, res, offset, size, ix, iy, iz, fx, fy, fz = _level_cell(
        x_ptr, idx, mask, scales_ptr, res_ptr, offsets_ptr, level
    )
    value = tl.zeros(idx.shape, dtype=tl.float32)
    for c in tl.static_range(8):
        row, w = _corner(ix, iy, iz, fx, fy, fz, res, offset, size, c)
        value += w * tl.load(table_ptr + (row + base) * F + f, mask=mask, other=0.0)
    return value


@triton.jit
def _base(frame_ptr, idx, mask, entries, HAS_FRAME: tl.constexpr):
    """First table row of each point: frame x entries (0 for one table)."""
    if HAS_FRAME:
        return tl.load(frame_ptr + idx, mask=mask, other=0).to(tl.int64) * entries
    return tl.zeros(idx.shape, dtype=tl.int64)


@triton.jit
def _hidden(x_ptr, table_ptr, w1_ptr, b1_ptr, idx, mask, base, scales_ptr, res_ptr, offsets_ptr, C, L,
            F: tl.constexpr, H: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    """relu(W1 features + b1) [BLOCK, H]."""
    hid = tl.arange(0, H)
    hidden = tl.zeros([BLOCK, H], dtype=tl.float32) + tl.load(b1_ptr + hid)[None, :]
    for level in range(L):
        for f in tl.static_range(F):
            value = _feature(x_ptr, table_ptr, idx, mask, base, level, scales_ptr, res_ptr, offsets_ptr, F, f)
            hidden += value[:, None] * tl.load(w1_ptr + hid * C + level * F + f)[None, :]
    return tl.maximum(hidden, 0.0)


@triton.jit
def _forward_kernel(x_ptr, frame_ptr, table_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, out_ptr, scales_ptr, res_ptr,
                    offsets_ptr, n, entries, C, L, F: tl.constexpr, H: tl.constexpr, K: tl.constexpr,
                    HAS_FRAME: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = idx < n
    hid = tl.arange(0, H)
    base = _base(frame_ptr, idx, mask, entries, HAS_FRAME)
    hidden = _hidden(x_ptr, table_ptr, w1_ptr, b1_ptr, idx, mask, base, scales_ptr, res_ptr, offsets_ptr, C, L, F, H,
                     BLOCK)  # fmt: skip
    for k in tl.static_range(K):
        value = tl.sum(hidden * tl.load(w2_ptr + k * H + hid)[None, :], 1) + tl.load(b2_ptr + k)
        tl.store(out_ptr + idx * K + k, value, mask=mask)


@triton.jit
def _backward_kernel(grad_ptr, x_ptr, frame_ptr, table_ptr, w1_ptr, b1_ptr, w2_ptr, g_table_ptr, g_w1_ptr, g_b1_ptr,
                     g_w2_ptr, g_b2_ptr, scales_ptr, res_ptr, offsets_ptr, n, entries, C, L, F: tl.constexpr,
                     H: tl.constexpr, K: tl.constexpr, HAS_FRAME: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = idx < n
    hid = tl.arange(0, H)
    base = _base(frame_ptr, idx, mask, entries, HAS_FRAME)
    hidden = _hidden(x_ptr, table_ptr, w1_ptr, b1_ptr, idx, mask, base, scales_ptr, res_ptr, offsets_ptr, C, L, F, H,
                     BLOCK)  # fmt: skip
    grad_hidden = tl.zeros([BLOCK, H], dtype=tl.float32)
    for k in tl.static_range(K):
        g = tl.load(grad_ptr + idx * K + k, mask=mask, other=0.0)
        grad_hidden += g[:, None] * tl.load(w2_ptr + k * H + hid)[None, :]
        tl.atomic_add(g_w2_ptr + k * H + hid, tl.sum(g[:, None] * hidden, 0))
        tl.atomic_add(g_b2_ptr + k, tl.sum(g, 0))
    grad_hidden = tl.where(hidden > 0, grad_hidden, 0.0)
    tl.atomic_add(g_b1_ptr + hid, tl.sum(grad_hidden, 0))
    for level in range(L):
        scale, res, offset, size, ix, iy, iz, fx, fy, fz = _level_cell(
            x_ptr, idx, mask, scales_ptr, res_ptr, offsets_ptr, level
        )
        for f in tl.static_range(F):
            column = level * F + f
            value = _feature(x_ptr, table_ptr, idx, mask, base, level, scales_ptr, res_ptr, offsets_ptr, F, f)
            tl.atomic_add(g_w1_ptr + hid * C + column, tl.sum(grad_hidden * value[:, None], 0))
            grad_value = tl.sum(grad_hidden * tl.load(w1_ptr + hid * C + column)[None, :], 1)
            for c in tl.static_range(8):
                row, w = _corner(ix, iy, iz, fx, fy, fz, res, offset, size, c)
                tl.atomic_add(g_table_ptr + (row + base) * F + f, w * grad_value, mask=mask)


def _layout(scales, resolutions, offsets, device) -> tuple[Tensor, Tensor, Tensor]:
    return (
        torch.tensor(scales, dtype=torch.float32, device=device),
        torch.tensor(resolutions, dtype=torch.int64, device=device),
        torch.tensor(offsets, dtype=torch.int64, device=device),
    )


def _frames(x01: Tensor, table: Tensor, frame: Tensor | None) -> tuple[Tensor, int, bool]:
    """(frame pointer (the points when there is none), rows per table, whether points carry a frame)."""
    if frame is None:
        return x01, table.shape[0], False
    return frame, table.shape[1], True


def forward(x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame=None) -> Tensor:
    """Outputs [N, K] (fp32) of points x01 [N, 3] through an fp32 table (or [B, entries, F] with `frame` [N])."""
    n, (k, h), c = x01.shape[0], w2.shape, w1.shape[1]
    out = torch.empty(n, k, dtype=torch.float32, device=table.device)
    s, r, o = _layout(scales, resolutions, offsets, table.device)
    frame_ptr, entries, has_frame = _frames(x01, table, frame)
    _forward_kernel[(triton.cdiv(n, BLOCK),)](
        x01, frame_ptr, table, w1.contiguous(), b1.contiguous(), w2.contiguous(), b2.contiguous(), out, s, r, o, n,
        entries, c, len(scales), F=table.shape[-1], H=h, K=k, HAS_FRAME=has_frame, BLOCK=BLOCK,
    )  # fmt: skip
    return out


def backward(grad, x01, table, w1, b1, w2, b2, scales, resolutions, offsets, frame=None) -> tuple[Tensor, ...]:
    """Gradients of the table, w1, b1, w2, b2 (fp32) for outputs with gradient `grad` [N, K]."""
    n, (k, h), c = x01.shape[0], w2.shape, w1.shape[1]
    grads = [torch.zeros(t.shape, dtype=torch.float32, device=table.device) for t in (table, w1, b1, w2, b2)]
    s, r, o = _layout(scales, resolutions, offsets, table.device)
    frame_ptr, entries, has_frame = _frames(x01, table, frame)
    _backward_kernel[(triton.cdiv(n, BLOCK),)](
        grad.float().contiguous(), x01, frame_ptr, table, w1.contiguous(), b1.contiguous(), w2.contiguous(), *grads,
        s, r, o, n, entries, c, len(scales), F=table.shape[-1], H=h, K=k, HAS_FRAME=has_frame, BLOCK=BLOCK,
    )  # fmt: skip
    return tuple(grads)


__all__ = ["BLOCK", "backward", "forward"]
