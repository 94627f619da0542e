"""The compute device a user names, checked before anything is built on it.

torch accepts many strings lazily: `torch.device("cuda")` succeeds on a machine without CUDA and the first
CUDA call then fails deep inside (e.g. AttributeError `_cuda_resetPeakMemoryStats`), and "gpu0" fails with a
RuntimeError listing every backend torch knows. Here the string is checked against what this machine has.
"""

from __future__ import annotations

import re

import torch

_FORMS = "cpu, cuda, cuda:N (N = GPU index, e.g. cuda:0) or mps"


def _cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str | torch.device | None, flag: str = "--device") -> torch.device:
    """`name` -> a torch.device this machine has; None picks CUDA when available, else the CPU.

    Args:
        name: "cpu", "cuda", "cuda:N", "mps" (any case, surrounding blanks ignored), a torch.device, or None.
        flag: how the user passed it (named in the messages), e.g. "--device" or a node input.

    Raises:
        ValueError: an unknown form, CUDA/MPS asked for where there is none, or a GPU index out of range.
    """
    if name is None:
        return torch.device("cuda" if _cuda_count() else "cpu")
    text = str(name).strip().lower()
    match = re.fullmatch(r"(cpu|cuda|mps)(?::(\d+))?", text)
    if match is None:
        raise ValueError(f"{flag} {name!r} is not a device name; use {_FORMS}.")
    kind, index = match.group(1), match.group(2)
    if kind == "cpu":
        if index not in (None, "0"):
            raise ValueError(f"{flag} {name!r}: the CPU has no index; use {flag} cpu.")
        return torch.device("cpu")
    if kind == "mps":
        if not _mps_available():
            raise ValueError(f"{flag} {name!r}: Apple's MPS backend is not available here; use {flag} cpu.")
        return torch.device("mps")
    count = _cuda_count()
    if count == 0:
        built = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise ValueError(f"{flag} {name!r}: CUDA is not available on this machine ({built}); rerun with {flag} cpu.")
    if index is not None and int(index) >= count:
        raise ValueError(
            f"{flag} {name!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}; pick one of those."
        )
    return torch.device(text)
