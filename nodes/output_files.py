"""Where the nodes write: output/animate124/<kind>/, numbered file names that never reuse a number, and the paths
ComfyUI's previews and Preview 3D read (relative to the output folder)."""

from __future__ import annotations

import re
from pathlib import Path

from .glue import folder_paths

#: Sub-folder of ComfyUI's output folder for everything the pack writes.
OUTPUT_SUBFOLDER = "animate124"


def output_dir(*parts: str) -> Path:
    """<ComfyUI output>/animate124/<parts>, created."""
    path = Path(folder_paths().get_output_directory(), OUTPUT_SUBFOLDER, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def next_numbered_path(folder: Path, stem: str, suffix: str) -> Path:
    """`folder/<stem>_<n>.<suffix>` with n one above the highest number already there (00001 in an empty folder).

    As ComfyUI's own savers count: deleting an earlier file never makes a later export overwrite an existing one.
    """
    pattern = re.compile(re.escape(stem) + r"_(\d{5,})" + re.escape(suffix) + "$")
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))]
    return folder / f"{stem}_{max(numbers, default=0) + 1:05d}{suffix}"


def check_prefix(filename_prefix: str) -> bool | str:
    """validate_inputs part: a file name prefix is one plain name (no folders, nothing hidden)."""
    if not filename_prefix or not filename_prefix.strip():
        return "filename_prefix is empty; give a name such as 'animate124'."
    if any(c in filename_prefix for c in '/\\:*?"<>|') or filename_prefix.startswith("."):
        return f'filename_prefix {filename_prefix!r} must be a plain file name (no folders or /\\:*?"<>|).'
    return True


def relative_to_output(path: Path) -> str:
    """The path ComfyUI's previews and Preview 3D load (relative to the output folder, forward slashes)."""
    return Path(path).resolve().relative_to(Path(folder_paths().get_output_directory()).resolve()).as_posix()


def resolve_output_file(name: str, what: str) -> Path:
    """An absolute path, or one relative to <output>/animate124 (how checkpoints and scenes are named)."""
    path = Path(name.strip()).expanduser()
    if not path.is_absolute():
        path = Path(folder_paths().get_output_directory(), OUTPUT_SUBFOLDER, path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} {name!r} not found (looked for {path}); give a path relative to output/animate124."
        )
    return path


def video_preview(paths: list[Path]):
    """The `ui` output that makes ComfyUI preview videos written under its output folder."""
    from comfy_api.v0_0_2 import io, ui

    items = []
    for path in paths:
        rel = Path(relative_to_output(path))
        items.append(ui.SavedResult(rel.name, rel.parent.as_posix(), io.FolderType.output))
    return ui.PreviewVideo(items)
