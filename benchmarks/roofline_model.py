"""A roofline model of a training step, recorded op by op on a CPU and projected onto a GPU.

`OpRecorder` is a TorchDispatchMode that sees every aten (and custom) op a step runs, real or FakeTensor, and
records per op:
  - FLOPs: FlopCounterMode's formulas (matmuls, convolutions, attention; elementwise ops count 0);
  - bytes moved: every tensor input read plus every output written, at the tensors' own dtypes (fp16 for the
    FakeTensor priors, the field's dtype for the field), a broadcast (stride 0) dimension read once. Rules where
    "inputs + outputs" would be wrong: views, allocations and metadata ops move nothing and launch nothing; a
    gather (index_select, embedding, ...) reads the rows it gathers, not its whole source; a scatter
    (index_add, index_put, ...) reads and writes the rows it touches (plus a full copy when out of place); a
    fill or random op only writes; copy_ reads its source and writes its destination. Gathered / scattered rows
    of a source that fits in the GPU's L2 cache are charged at most the source's size per op (they hit L2);
  - the code part that issued it (`part_of`): the live Python stack in the forward pass, the forward traceback
    of the autograd node being run in the backward pass (anomaly mode records it).
Projection per op: max(FLOPs / peak of its dtype, bytes / bandwidth) + one launch overhead per kernel, plus a
fixed cost per host sync (nonzero, .item()). A roofline: kernels at their peak and the launch queue never empty,
so the projection is a lower bound of what eager PyTorch achieves; the GPU timings of issue 18 validate it.
"""

from __future__ import annotations

import math
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map_only
from torch.utils.flop_counter import flop_registry, sdpa_flop

aten = torch.ops.aten

#: L2 cache of an H100 / H200: gathers from a smaller source hit the cache.
L2_BYTES = 50 * 2**20
#: Time a kernel launch adds (back-to-back launches of small kernels on an H100 run at ~3-5 us each).
LAUNCH_SECONDS = 4e-6
#: Time a host sync costs (the device drains its queue, the host waits, then refills it).
SYNC_SECONDS = 20e-6


@dataclass(frozen=True)
class Gpu:
    """Peaks of one GPU."""

    name: str
    half_flops: float
    """Dense fp16 / bf16 tensor-core FLOP/s."""
    float_flops: float
    """fp32 FLOP/s (no TF32: PyTorch leaves it off for matmuls)."""
    bandwidth: float
    """HBM bytes/s."""

    def flops_for(self, dtype: torch.dtype | None) -> float:
        return self.half_flops if dtype in (torch.float16, torch.bfloat16) else self.float_flops


H100 = Gpu("H100 SXM", 989.4e12, 66.9e12, 3.35e12)
H200 = Gpu("H200", 989.4e12, 66.9e12, 4.8e12)
GPUS = (H100, H200)

# sdpa on CPU tensors dispatches to the CPU flash kernel, which FlopCounterMode does not list: same formula.
FLOP_FORMULAS = {**flop_registry, aten._scaled_dot_product_flash_attention_for_cpu: sdpa_flop}
# .item() (aten._local_scalar_dense) is left out: in a step it reads CPU scalars (the stage generator's draws, Adam's
# step count), no device sync; the loop's finite check is the one device read, added by the caller.
SYNC_OPS = {aten.nonzero, aten.masked_select, aten.is_nonzero, aten.equal}
NO_KERNEL_OPS = {aten.empty, aten.empty_like, aten.empty_strided, aten.new_empty, aten.new_empty_strided,
                 aten._local_scalar_dense, aten.lift_fresh, aten.set_, aten.resize_}  # fmt: skip
WRITE_ONLY_OPS = {aten.fill_, aten.zero_, aten.uniform_, aten.normal_, aten.random_, aten.bernoulli_,
                  aten.exponential_, aten.zeros, aten.ones, aten.full, aten.zeros_like, aten.ones_like,
                  aten.full_like, aten.rand, aten.randn, aten.randint, aten.rand_like, aten.randn_like,
                  aten.arange, aten.new_zeros, aten.new_ones, aten.new_full, aten.scalar_tensor}  # fmt: skip
#: op -> (argument index of the source, of the index); output = gathered rows.
GATHER_OPS = {aten.index_select: (0, 2), aten.gather: (0, 2), aten.embedding: (0, 1), aten.index: (0, 1),
              aten.take: (0, 1)}  # fmt: skip
#: op -> (index of the destination, of the index, of the values); in-place unless listed in OUT_OF_PLACE.
SCATTER_OPS = {aten.index_add_: (0, 2, 3), aten.index_add: (0, 2, 3), aten.index_copy_: (0, 2, 3),
               aten.index_copy: (0, 2, 3), aten.scatter_add_: (0, 2, 3), aten.scatter_add: (0, 2, 3),
               aten.scatter_: (0, 2, 3), aten.scatter: (0, 2, 3), aten.index_put_: (0, 1, 2),
               aten.index_put: (0, 1, 2), aten._index_put_impl_: (0, 1, 2)}  # fmt: skip
OUT_OF_PLACE_SCATTERS = {aten.index_add, aten.index_copy, aten.scatter_add, aten.scatter, aten.index_put}
#: Byte rules of custom fused ops (name -> (args, kwargs, out) -> (read, written)); see `register_op_bytes`.
CUSTOM_OP_BYTES: dict[str, Callable] = {}
#: FLOP rules of custom fused ops (name -> args -> FLOPs): their matmuls, which FlopCounterMode cannot see.
CUSTOM_OP_FLOPS: dict[str, Callable] = {}


def register_op_bytes(name: str, rule: Callable) -> None:
    """Bytes (read, written) of a custom op that the generic rules cannot see into (a fused kernel)."""
    CUSTOM_OP_BYTES[name] = rule


def _grid_encode_bytes(args, kwargs, out) -> tuple[int, int]:
    """a124::grid_encode (grid_kernels.py): reads the points and 8 corner rows per level (cached), writes features."""
    x01, table, scales = args[0], args[1], args[2]
    gathered = x01.shape[0] * len(scales) * 8 * table.shape[1] * table.element_size()
    return tensor_bytes(x01) + cached_bytes(gathered, tensor_bytes(table)), tensor_bytes(out)


def _grid_encode_backward_bytes(args, kwargs, out) -> tuple[int, int]:
    """a124::grid_encode_backward: reads points and gradient, read-modify-writes 8 corner rows per level."""
    grad_table, grad, x01, scales = args[0], args[1], args[2], args[3]
    scattered = x01.shape[0] * len(scales) * 8 * grad_table.shape[1] * grad_table.element_size()
    touched = cached_bytes(scattered, tensor_bytes(grad_table))
    return tensor_bytes(x01) + tensor_bytes(grad) + touched, touched


def _grid_encode_points_backward_bytes(args, kwargs, out) -> tuple[int, int]:
    """a124::grid_encode_points_backward: reads gradient, points and 8 rows per level (cached), writes [N, 3]."""
    grad, x01, table, scales = args[0], args[1], args[2], args[3]
    gathered = x01.shape[0] * len(scales) * 8 * table.shape[1] * table.element_size()
    return tensor_bytes(grad) + tensor_bytes(x01) + cached_bytes(gathered, tensor_bytes(table)), tensor_bytes(out)


def _hash_encode_bytes(args, kwargs, out) -> tuple[int, int]:
    """a124::hash_grid_encode (hash_kernels.py): reads the points and 2^D corner rows per level, writes features."""
    u, table, scales = args[0], args[1], args[2]
    gathered = u.shape[0] * len(scales) * 2 ** u.shape[1] * table.shape[1] * table.element_size()
    return tensor_bytes(u) + cached_bytes(gathered, tensor_bytes(table)), tensor_bytes(out)


def _hash_encode_backward_bytes(args, kwargs, out) -> tuple[int, int]:
    """a124::hash_grid_encode_backward: reads points and gradient, read-modify-writes 2^D corner rows per level."""
    grad_table, grad, u, scales = args[0], args[1], args[2], args[3]
    scattered = u.shape[0] * len(scales) * 2 ** u.shape[1] * grad_table.shape[1] * grad_table.element_size()
    touched = cached_bytes(scattered, tensor_bytes(grad_table))
    return tensor_bytes(u) + tensor_bytes(grad) + touched, touched


def _table_rows(x01, table, scales) -> int:
    """Bytes of the 8 corner rows per level the points read from `table` ([entries, F], or a batch of tables
    [B, entries, F] with one per frame: a frame's points are contiguous, so its table is in L2 while they run)."""
    gathered = x01.shape[0] * len(scales) * 8 * table.shape[-1] * table.element_size()
    one_table = table[0] if table.dim() == 3 else table
    if tensor_bytes(one_table) <= L2_BYTES:
        return min(gathered, tensor_bytes(table))
    return gathered


def _grid_mlp_bytes(args, kwargs, out) -> tuple[int, int]:
    """a124::grid_mlp (mlp_kernels.py): reads the points (and their frames), 8 corner rows per level (cached) and the
    weights, writes the K outputs; features and hidden layer stay in registers."""
    x01, table, scales, frame = args[0], args[1], args[6], args[9] if len(args) > 9 else None
    weights = sum(tensor_bytes(t) for t in args[2:6])
    points = tensor_bytes(x01) + (0 if frame is None else tensor_bytes(frame))
    return points + _table_rows(x01, table, scales) + weights, tensor_bytes(out)


def _grid_mlp_backward_bytes(args, kwargs, out) -> tuple[int, int]:
    """a124::grid_mlp_backward: reads gradient and points, gathers (forward recomputed) and scatters 8 corner rows
    per level (cached), reads the weights and writes their gradients (the table gradient zero-filled first)."""
    grad, x01, table, scales, frame = args[0], args[1], args[2], args[7], args[10] if len(args) > 10 else None
    weights = sum(tensor_bytes(t) for t in args[3:7])
    rows = _table_rows(x01, table, scales)
    points = tensor_bytes(grad) + tensor_bytes(x01) + (0 if frame is None else tensor_bytes(frame))
    return points + 2 * rows + weights, tensor_bytes(table) + rows + weights


def _tv_knot_rows(x01, tables, scales) -> int:
    """Bytes of the corner rows one knot table gives all points: at most the table (it fits in L2: a pair's two
    tables are read while every block of points of the pair runs)."""
    gathered = x01.shape[0] * len(scales) * 8 * tables.shape[2] * tables.element_size()
    return cached_bytes(gathered, tables[0].numel() * tables.element_size())


def _grid_temporal_tv_bytes(args, kwargs, out) -> tuple[int, int]:
    """a124::grid_temporal_tv (tv_kernels.py): reads the points and, per knot pair, both tables' corner rows."""
    x01, tables, scales = args[0], args[1], args[2]
    return tensor_bytes(x01) + 2 * (tables.shape[0] - 1) * _tv_knot_rows(x01, tables, scales), tensor_bytes(out)


def _grid_temporal_tv_backward_bytes(args, kwargs, out) -> tuple[int, int]:
    """a124::grid_temporal_tv_backward: zero-fills the table gradient, then per knot pair re-reads both tables' rows
    and read-modify-writes both gradients' rows."""
    x01, tables, scales = args[1], args[2], args[3]
    rows = (tables.shape[0] - 1) * _tv_knot_rows(x01, tables, scales)
    return tensor_bytes(x01) + 4 * rows, tensor_bytes(out) + 2 * rows


def _grid_mlp_flops(args) -> int:
    """2 N (C H + H K): the two layers (the trilinear sums are not counted, as for the grid op)."""
    x01, w1, w2 = args[0], args[2], args[4]
    return 2 * x01.shape[0] * (w1.numel() + w2.numel())


def _grid_mlp_backward_flops(args) -> int:
    """The recomputed forward, the hidden and feature gradients and the two weight gradients: 2 N (3 C H + 2 H K)."""
    x01, w1, w2 = args[1], args[3], args[5]
    return 2 * x01.shape[0] * (3 * w1.numel() + 2 * w2.numel())


register_op_bytes("a124::grid_encode", _grid_encode_bytes)
register_op_bytes("a124::grid_encode_backward", _grid_encode_backward_bytes)
register_op_bytes("a124::grid_encode_points_backward", _grid_encode_points_backward_bytes)
register_op_bytes("a124::hash_grid_encode", _hash_encode_bytes)
register_op_bytes("a124::hash_grid_encode_backward", _hash_encode_backward_bytes)
register_op_bytes("a124::grid_mlp", _grid_mlp_bytes)
register_op_bytes("a124::grid_mlp_backward", _grid_mlp_backward_bytes)
register_op_bytes("a124::grid_temporal_tv", _grid_temporal_tv_bytes)
register_op_bytes("a124::grid_temporal_tv_backward", _grid_temporal_tv_backward_bytes)
CUSTOM_OP_FLOPS["a124::grid_mlp"] = _grid_mlp_flops
CUSTOM_OP_FLOPS["a124::grid_mlp_backward"] = _grid_mlp_backward_flops


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes a kernel touches reading or writing `t`: broadcast (stride 0) dimensions count once."""
    if t.numel() == 0:
        return 0
    return math.prod(s for s, st in zip(t.shape, t.stride()) if st != 0) * t.element_size()


def cached_bytes(touched: int, source: int) -> int:
    """Bytes of `touched` gathered / scattered rows of a `source` buffer: at most the source if it fits in L2."""
    return min(touched, source) if source <= L2_BYTES else touched


def _tensors(tree) -> list[torch.Tensor]:
    return [v for v in tree_flatten(tree)[0] if isinstance(v, torch.Tensor)]


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


def op_bytes(func, args, kwargs, out) -> tuple[int, int]:
    """(bytes read, bytes written) of one op; see the module docstring for the rules."""
    name = func._schema.name
    if name in CUSTOM_OP_BYTES:
        return CUSTOM_OP_BYTES[name](args, kwargs, out)
    packet = func.overloadpacket
    outs = _tensors(out)
    written = sum(tensor_bytes(t) for t in outs)
    if packet in WRITE_ONLY_OPS:
        return 0, written
    if packet is aten.copy_:
        return tensor_bytes(args[1]), tensor_bytes(args[0])
    if packet in GATHER_OPS:
        src, idx = (args[i] if i < len(args) else None for i in GATHER_OPS[packet])
        indices = sum(tensor_bytes(t) for t in _tensors(idx))
        return indices + cached_bytes(written, tensor_bytes(src)), written
    if packet in SCATTER_OPS:
        dst, idx, values = (args[i] for i in SCATTER_OPS[packet])
        touched = cached_bytes(tensor_bytes(values), tensor_bytes(dst))
        read = sum(tensor_bytes(t) for t in _tensors(idx)) + tensor_bytes(values) + touched
        if packet in OUT_OF_PLACE_SCATTERS:  # a full copy of the destination first
            return read + tensor_bytes(dst), tensor_bytes(dst) + touched
        return read, touched
    if packet is aten.embedding_dense_backward:  # zero-filled table + scatter of the gradient rows
        grad, idx = args[0], args[1]
        return tensor_bytes(grad) + tensor_bytes(idx) + cached_bytes(tensor_bytes(grad), written), 2 * written
    read = sum(tensor_bytes(t) for t in _tensors((args, kwargs)))
    return read, written


def is_view_or_alias(func, args, kwargs, out) -> bool:
    """An op that only makes a view / alias of an input (no kernel, no bytes)."""
    if any(r.alias_info is not None and r.alias_info.is_write for r in func._schema.returns):
        return False  # in place: writes its input
    outs = _tensors(out)
    if not outs:
        return True
    inputs = {_storage_key(t) for t in _tensors((args, kwargs))}
    return all(_storage_key(t) in inputs for t in outs)


@dataclass
class OpCost:
    """What one op costs."""

    flops: int
    read: int
    written: int
    kernels: int
    syncs: int
    dtype: torch.dtype | None

    @property
    def bytes(self) -> int:
        return self.read + self.written

    def seconds(self, gpu: Gpu) -> float:
        busy = max(self.flops / gpu.flops_for(self.dtype), self.bytes / gpu.bandwidth) if self.kernels else 0.0
        return busy + self.kernels * LAUNCH_SECONDS + self.syncs * SYNC_SECONDS


def op_cost(func, args, kwargs, out) -> OpCost:
    packet = func.overloadpacket
    syncs = int(packet in SYNC_OPS)
    if packet in NO_KERNEL_OPS or is_view_or_alias(func, args, kwargs, out):
        return OpCost(0, 0, 0, 0, syncs, None)
    if func._schema.name in CUSTOM_OP_FLOPS:
        flops = CUSTOM_OP_FLOPS[func._schema.name](args)
    else:
        flops = FLOP_FORMULAS[packet](*args, **kwargs, out_val=out) if packet in FLOP_FORMULAS else 0
    read, written = op_bytes(func, args, kwargs, out)
    floats = [t.dtype for t in _tensors((args, kwargs)) if t.is_floating_point()]
    return OpCost(int(flops), read, written, 1, syncs, floats[0] if floats else None)


# ----------------------------------------------------------------------------- attribution
_TRACEBACK_LINE = re.compile(r'File "([^"]+)", line \d+, in (\S+)')
Frames = list[tuple[str, str]]  # (file, function), innermost first


def live_frames(skip: int = 2) -> Frames:
    frames, frame = [], sys._getframe(skip)
    while frame is not None:
        frames.append((frame.f_code.co_filename, frame.f_code.co_name))
        frame = frame.f_back
    return frames


def node_frames() -> Frames | None:
    """The forward traceback of the autograd node being run (backward pass), innermost first."""
    node = torch._C._current_autograd_node()
    if node is None:
        return None
    lines = node.metadata.get("traceback_") or []
    found = [m.groups() for line in lines for m in [_TRACEBACK_LINE.search(line)] if m]
    return [(f, fn) for f, fn in reversed(found)]


def _find(frames: Frames, rules: Iterable[tuple[str, str | None, str]]) -> str | None:
    """Label of the innermost frame matching one of (path fragment, function or None, label)."""
    for file, func in frames:
        path = file.replace("\\", "/")
        for fragment, name, label in rules:
            if fragment in path and (name is None or func == name):
                return label
    return None


FIELD_CONTEXTS = (
    ("rendering/occupancy.py", "refresh", "occupancy refresh"),
    ("fields/grid4d.py", "temporal_tv", "temporal TV"),
    ("rendering/renderer.py", "density_normals", "normals"),
    ("rendering/renderer.py", "_normal_samples", "normal selection"),
    ("rendering/renderer.py", "_sample_depths", "importance pass"),
    ("fields/grid4d.py", "tables_at", "knot blend"),
    ("fields/grid4d.py", "table_at", "knot blend"),
    ("rendering/renderer.py", None, "samples"),
)
FIELD_LEAVES = (
    ("fields/encoding.py", None, "grid"),
    ("fields/grid_kernels.py", None, "grid"),
    ("fields/grid4d.py", None, "grid"),
    ("fields/mlp_kernels.py", None, "grid + MLP"),
    ("fields/tv_kernels.py", None, "grid"),
    ("fields/static.py", None, "MLP"),
    ("fields/hash_encoding.py", None, "deformation grid"),
    ("fields/hash_kernels.py", None, "deformation grid"),
    ("fields/deformation.py", None, "deformation MLP"),
    ("rendering/", None, "compositing"),
)
PRIORS = (  # searched over the whole stack first: latent.py is shared by the text priors
    ("priors/zero123.py", None, "Zero123"),
    ("priors/video.py", None, "video prior"),
    ("priors/controlnet_tile.py", None, "ControlNet-Tile"),
    ("guidance/sds.py", "x0_reconstruction", "ControlNet-Tile"),
    ("textual_inversion/", None, "SD1.5 (textual inversion)"),
)
TEXT_PRIORS = (("priors/sd.py", None, "SD1.5"), ("priors/latent.py", None, "SD1.5"))
#: Searched outermost first: a VAE's encoder runs diffusers' unet_2d_blocks, a ControlNet its UNet blocks.
NETWORKS = (
    ("/diffusers/models/unets/", None, "UNet"),
    ("/diffusers/models/autoencoders/", None, "VAE encoder"),
    ("/diffusers/models/controlnets/", None, "ControlNet"),
    ("/transformers/models/", None, "text/image encoder"),  # HF transformers (diffusers has models/transformers/)
)
OTHER = (
    ("/torch/optim/", None, "optimizer"),
    ("training/runner.py", "_grads_finite", "NaN guard"),
    ("training/terms/arap.py", None, "ARAP"),
    ("training/losses.py", None, "losses"),
    ("training/", None, "losses"),
    ("cameras.py", None, "cameras/rays"),
    ("rays.py", None, "cameras/rays"),
)


def part_of(frames: Frames) -> str:
    """The code part of an op from its stack: 'field context: leaf', 'prior: network', or another part. Renders
    of the ControlNet's condition and of the reference view on clips that start at t = 0 ('clip_start') are
    prefixed, so their share of the steps can be weighted apart."""
    if _find(frames, OTHER[:3]):
        return _find(frames, OTHER[:3])  # type: ignore[return-value]
    prior = _find(frames, PRIORS) or _find(frames, TEXT_PRIORS)
    if prior is not None:
        return f"{prior}: {_find(frames[::-1], NETWORKS) or 'SDS'}"
    context = _find(frames, FIELD_CONTEXTS)
    if context is not None:
        if any(func == "control_images" for _, func in frames):
            context = f"ControlNet condition {context}"
        elif any(f.replace("\\", "/").endswith("training/terms/reconstruction.py") for f, _ in frames):
            context = f"reference view {context}"
        return f"{context}: {_find(frames, FIELD_LEAVES) or 'compositing'}"
    return _find(frames, OTHER) or "other"


# ----------------------------------------------------------------------------- recorder
@dataclass
class Totals:
    """Sums over the ops of one (part, phase, op) key."""

    count: float = 0.0
    flops: float = 0.0
    bytes: float = 0.0
    kernels: float = 0.0
    syncs: float = 0.0
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, cost: OpCost, gpus: Iterable[Gpu], weight: float = 1.0) -> None:
        self.count += weight
        self.flops += weight * cost.flops
        self.bytes += weight * cost.bytes
        self.kernels += weight * cost.kernels
        self.syncs += weight * cost.syncs
        for gpu in gpus:
            self.seconds[gpu.name] += weight * cost.seconds(gpu)

    def merge(self, other: Totals, weight: float = 1.0) -> None:
        self.count += weight * other.count
        self.flops += weight * other.flops
        self.bytes += weight * other.bytes
        self.kernels += weight * other.kernels
        self.syncs += weight * other.syncs
        for name, seconds in other.seconds.items():
            self.seconds[name] += weight * seconds


Key = tuple[str, str, str]  # (part, phase 'fwd' / 'bwd' / 'recompute', op)


class OpRecorder(TorchDispatchMode):
    """Records the cost of every op run while active, keyed by (part, phase, op).

    With `fake_mode`, ops issued from a stack that matches `fake_contexts`, and checkpoint recomputes, run on
    FakeTensors of their inputs (tensors of at least `min_fake_numel` elements are converted): the same ops and
    shapes, none of the compute.
    benchmarks/roofline.py uses it for the field's work whose values decide no shape.
    """

    def __init__(
        self,
        gpus: Iterable[Gpu] = GPUS,
        fake_mode: FakeTensorMode | None = None,
        fake_contexts: Iterable[tuple[str, str | None, str]] = (),
        min_fake_numel: int = 4096,
    ):
        super().__init__()
        self.gpus = tuple(gpus)
        self.fake_mode = fake_mode
        self.fake_contexts = tuple(fake_contexts)
        self.min_fake_numel = min_fake_numel
        self.totals: dict[Key, Totals] = defaultdict(Totals)
        self.rows: dict[str, int] = defaultdict(int)  # part -> rows returned by its nonzero ops

    def _fake(self, t: torch.Tensor) -> torch.Tensor:
        if isinstance(t, FakeTensor) or t.numel() < self.min_fake_numel:
            return t
        return self.fake_mode.from_tensor(t)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        frames = node_frames()
        phase = "fwd"
        live = live_frames()
        if frames is not None:  # backward: the checkpoint recompute runs forward code, the rest is backward work
            recompute = any(f.replace("\\", "/").endswith("torch/utils/checkpoint.py") for f, _ in live)
            phase, frames = ("recompute", live) if recompute else ("bwd", frames)
        else:
            frames = live
        if self.fake_mode is not None and (phase == "recompute" or _find(frames, self.fake_contexts)):
            args, kwargs = tree_map_only(torch.Tensor, self._fake, (args, kwargs))
        out = func(*args, **kwargs)
        part = part_of(frames)
        self.totals[(part, phase, str(func.overloadpacket.__name__))].add(op_cost(func, args, kwargs, out), self.gpus)
        if func.overloadpacket is aten.nonzero:
            self.rows[part] += int(out.shape[0])
        return out


def combine(records: Iterable[tuple[dict[Key, Totals], float]]) -> dict[Key, Totals]:
    """Weighted sum of recorded totals (e.g. an SDS step x its share of the steps + a refresh / 16)."""
    combined: dict[Key, Totals] = defaultdict(Totals)
    for totals, weight in records:
        for key, value in totals.items():
            combined[key].merge(value, weight)
    return combined


def by_part(totals: dict[Key, Totals]) -> dict[str, Totals]:
    parts: dict[str, Totals] = defaultdict(Totals)
    for (part, _phase, _op), value in totals.items():
        parts[part].merge(value)
    return parts


def total_of(totals: dict[Key, Totals]) -> Totals:
    out = Totals()
    for value in totals.values():
        out.merge(value)
    return out


__all__ = [
    "GPUS",
    "H100",
    "H200",
    "LAUNCH_SECONDS",
    "L2_BYTES",
    "SYNC_SECONDS",
    "Gpu",
    "OpCost",
    "OpRecorder",
    "Totals",
    "by_part",
    "cached_bytes",
    "combine",
    "op_bytes",
    "op_cost",
    "part_of",
    "register_op_bytes",
    "tensor_bytes",
    "total_of",
]
