"""What a command-line run shows and measures: one progress line per stage, preview images, seconds and memory."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .checkpoint import atomic_path


class ConsoleProgress:
    """One updating line per stage on stderr (step/total, loss, elapsed time); previews saved as PNGs."""

    def __init__(self, stage: str, preview_dir: Path | None = None):
        self.stage, self.start, self.preview_dir = stage, time.time(), preview_dir

    def __call__(self, step: int, total: int, losses: dict[str, float] | float, preview: torch.Tensor | None) -> None:
        loss = losses if isinstance(losses, float) else losses.get("total", sum(losses.values()))
        elapsed = time.time() - self.start
        sys.stderr.write(f"\r[{self.stage}] {step}/{total} loss {loss:.4g} {elapsed:.0f}s")
        if step == total:
            sys.stderr.write("\n")
        if preview is not None and self.preview_dir is not None:
            from PIL import Image

            array = (preview.detach().float().clamp(0, 1).cpu().numpy() * 255).astype("uint8")
            with atomic_path(self.preview_dir / f"{self.stage}.png", suffix=".png") as tmp:
                Image.fromarray(array).save(tmp)


def peak_memory_gb(device: torch.device) -> float:
    """Peak GPU memory allocated since the last reset (CUDA), else the process's peak resident memory."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def timed(seconds: dict[str, float], memory: dict[str, float], name: str, device: torch.device, fn: Callable) -> Any:
    """Run `fn`, recording its wall time under `seconds[name]` and the peak memory under `memory[name]`."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.time()
    result = fn()
    seconds[name] = round(time.time() - start, 2)
    memory[name] = round(peak_memory_gb(device), 3)
    return result


__all__ = ["ConsoleProgress", "peak_memory_gb", "timed"]
