"""A command-line run's output folder: what a run writes there, checked before any work, and never mixed with
another run's files.

A run owns a fixed set of names in its folder (`RUN_FILES`); anything else there is the user's and is left alone.
Before any work the folder and every subfolder the run will write must be folders (or creatable) and writable. A
fresh run refuses a folder that holds another run's files (a later `render` of its checkpoints would show the old
subject), unless asked to clear them first (`clear_previous_run`, which removes only the names a run owns).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: Names a run writes in its output folder (folders end in '/').
RUN_FILES = (
    "run_record.json",
    "summary.json",
    "reference.safetensors",
    "reference_clip.safetensors",
    "checkpoints/",
    "embeddings/",
    "previews/",
    "renders/",
    "meshes/",
    "tiny_models/",
)


def check_output_folder(out: Path, flag: str = "--out", subfolders: tuple[str, ...] = ()) -> None:
    """`out` and each of `subfolders` must be a folder or not exist yet, and `out` (or the folder it will be made
    in) must be writable. Writes nothing: a refused run leaves no folder behind; ValueError naming the path."""
    out = Path(out)
    for path in (out, *(out / name for name in subfolders)):
        blocked = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocked is not None:
            raise ValueError(
                f"{flag} {out}: {blocked} is a file where a folder is needed; move it or choose another {flag}."
            )
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):  # also EROFS: access(2) reports a read-only file system
        raise ValueError(f"{flag} {out}: {existing} is not writable; choose another {flag}.")


def previous_run_files(out: Path) -> list[str]:
    """The names of `RUN_FILES` present in `out` (folders with a trailing '/'); a file where a run keeps a folder is
    not a run's (`check_output_folder` names it)."""
    out = Path(out)
    return [n for n in RUN_FILES if ((out / n[:-1]).is_dir() if n.endswith("/") else (out / n).is_file())]


def clear_previous_run(out: Path) -> list[str]:
    """Remove the run-owned names present in `out` (nothing else); returns what was removed."""
    removed = previous_run_files(out)
    for name in removed:
        path = Path(out) / name.rstrip("/")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed


def refuse_previous_run(out: Path, resume_flag: str | None = "--resume") -> None:
    """A fresh run into a folder with another run's files: ValueError naming them and the ways out."""
    found = previous_run_files(out)
    if found:
        resume = f", {resume_flag} to continue that run" if resume_flag else ""
        raise ValueError(
            f"--out {out} holds another run's files ({', '.join(found)}): choose a new --out{resume}, or --overwrite "
            f"to delete those files first."
        )


__all__ = ["RUN_FILES", "check_output_folder", "clear_previous_run", "previous_run_files", "refuse_previous_run"]
