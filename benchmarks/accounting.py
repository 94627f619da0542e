"""Device-independent accounting of a training step: tensor bytes alive at once, and FLOPs.

Without a GPU the GPU memory of a step can still be counted where it is decided: which tensors are alive at
the same time. `LiveBytes` counts every storage an op creates while it is active, rounded up to the CUDA
caching allocator's 512-byte blocks, and forgets it when Python frees it; its `peak` is what
`torch.cuda.max_memory_allocated` would add for the same ops, less fragmentation and library workspaces
(cuBLAS, cuDNN, attention kernels). It works on real tensors and on FakeTensorMode tensors (full-size priors
that take no memory), so one code path measures both the priors and the field.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

#: The CUDA caching allocator rounds every block up to this many bytes.
ALLOCATOR_BLOCK = 512


def allocated_bytes(nbytes: int) -> int:
    return -(-nbytes // ALLOCATOR_BLOCK) * ALLOCATOR_BLOCK


class LiveBytes(TorchDispatchMode):
    """Bytes of storages created inside the mode and still alive; `peak` is their maximum over time."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self.live:  # a view of a storage already counted
            return
        size = allocated_bytes(storage.nbytes())
        self.live[key] = size
        self.current += size
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                self._track(value)
        return out


@dataclass
class StepCost:
    """What one call cost: peak bytes created and alive at once, and FLOPs (matmuls, convolutions, attention)."""

    peak_bytes: int
    flops: int

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / 2**30


def measure(fn: Callable[[], Any]) -> StepCost:
    """Run `fn` (forward and backward) twice: once under LiveBytes, once under FlopCounterMode.

    Two runs, because FlopCounterMode keeps activation checkpointing from freeing what it recomputes.
    """
    peak = peak_bytes(fn)
    with FlopCounterMode(display=False) as flops:
        fn()
    return StepCost(peak, flops.get_total_flops())


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes created and alive at once while `fn` runs (what it returns is dropped at once)."""
    tracker = LiveBytes()
    with tracker:
        fn()
    return tracker.peak


def parameter_bytes(*modules: torch.nn.Module) -> int:
    """Bytes of the modules' parameters and buffers (shared tensors counted once)."""
    seen: dict[int, int] = {}
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            seen[id(tensor)] = allocated_bytes(tensor.numel() * tensor.element_size())
    return sum(seen.values())


__all__ = ["ALLOCATOR_BLOCK", "LiveBytes", "StepCost", "allocated_bytes", "measure", "parameter_bytes", "peak_bytes"]
