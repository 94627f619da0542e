"""A full disk for the tests (issue 28): a small tmpfs where this machine lets the tests mount one (as root), else a
skip; and a safetensors writer that fails with ENOSPC for one file, for the same path everywhere."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str, instead: str) -> Iterator[Path]:
    """`path` (made here) as a tmpfs of `size` for the block; a skip naming `instead` where none can be mounted."""
    path.mkdir(parents=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode:
        pytest.skip(f"cannot mount a tmpfs here ({instead} patches the writer)")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def no_space_for(name: str, save: Callable) -> Callable:
    """A stand-in for `a124_core.checkpoint.save_file` that fails as a full disk does for files named `name` (its
    temporary name starts with it) and writes every other file with `save`."""

    def save_file(tensors, filename, metadata=None):
        if Path(filename).name.startswith(name):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
        return save(tensors, filename, metadata=metadata)

    return save_file
