"""Background removal with rembg, strictly from local model files.

rembg downloads its model at run time when the file is missing. Here that never happens silently: the file
is looked up first (rembg's own folders, then the `models/rembg/` folders passed in: ComfyUI's, or the command
line's `<--models-dir>/rembg`) and, when it is missing, a one-line FileNotFoundError names the file, the folders
searched and the alternatives for both the command line and the Reference node. rembg
itself is imported only when a file was found, because its first import compiles numba code (~1 min).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

#: rembg session names whose model file is `<name>.onnx` (the ones useful for object cut-outs).
REMBG_MODELS = (
    "u2net",
    "u2netp",
    "silueta",
    "isnet-general-use",
    "isnet-anime",
    "birefnet-general",
    "birefnet-general-lite",
    "birefnet-massive",
    "bria-rmbg",
)


def rembg_search_paths(model_name: str, comfy_dirs: Sequence[str | Path] = ()) -> list[Path]:
    """Every path where the `<model_name>.onnx` file is accepted, in search order.

    Mirrors rembg 2.0.x: `<home>/models/<name>/<name>.onnx` with home = $U2NET_HOME, $REMBG_HOME,
    $XDG_DATA_HOME/rembg or ~/.rembg; then the legacy flat folder $U2NET_HOME or $XDG_DATA_HOME/.u2net or
    ~/.u2net. Then each ComfyUI folder (`ComfyUI/models/rembg/`): `<dir>/<name>.onnx`, `<dir>/<name>/<name>.onnx`.
    """
    fname = f"{model_name}.onnx"
    xdg = os.getenv("XDG_DATA_HOME")
    legacy = os.getenv("U2NET_HOME") or os.path.join(xdg or "~", ".u2net")
    if os.getenv("U2NET_HOME"):
        home = legacy
    else:
        home = os.getenv("REMBG_HOME") or (os.path.join(xdg, "rembg") if xdg else os.path.join("~", ".rembg"))
    paths = [Path(home).expanduser() / "models" / model_name / fname, Path(legacy).expanduser() / fname]
    for d in comfy_dirs:
        paths += [Path(d).expanduser() / fname, Path(d).expanduser() / model_name / fname]
    return paths


#: Why rembg is needed and what else the user can pass, for a single reference image.
IMAGE_NEED = "The image has no alpha and no mask was given"
IMAGE_ALTERNATIVES = (
    "Command line: pass a mask with --mask MASK.png (white = object) or an RGBA image, or put {file} "
    "(https://github.com/danielgatis/rembg/releases) into <--models-dir>/rembg/ (another model: --rembg-model). "
    "ComfyUI: wire a mask into the Reference node's mask input or put {file} in ComfyUI/models/rembg/."
)


def find_rembg_model(
    model_name: str,
    comfy_dirs: Sequence[str | Path] = (),
    need: str = IMAGE_NEED,
    alternatives: str = IMAGE_ALTERNATIVES,
) -> Path:
    """The local model file for `model_name`, or a FileNotFoundError saying where to put it.

    `need` says why rembg is needed and `alternatives` (with `{file}` for the model file name) what else the user
    can pass; the defaults speak about a single reference image.
    """
    if model_name not in REMBG_MODELS:
        raise ValueError(f"Unknown background-removal model {model_name!r}; choose one of {', '.join(REMBG_MODELS)}.")
    paths = rembg_search_paths(model_name, comfy_dirs)
    for p in paths:
        if p.is_file() and p.stat().st_size > 0:
            return p
    listed = "; ".join(str(p) for p in paths)
    raise FileNotFoundError(
        f"{need}, so rembg must cut out the object, but its model file {model_name}.onnx was not found (downloads "
        f"are never started silently); searched: {listed}. " + alternatives.format(file=f"{model_name}.onnx")
    )


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def rembg_session(model_path: str | Path, model_name: str) -> Any:
    """A rembg session on exactly the local file `model_path` (one per clip: loading the model is the slow part).

    rembg resolves a model as `$U2NET_HOME/<name>.onnx` when that file exists (existing files are not
    checksummed), so pointing U2NET_HOME at the found file's folder for the session's creation makes rembg
    use exactly that file and never the network.
    """
    model_path = Path(model_path)
    if model_path.name != f"{model_name}.onnx" or not model_path.is_file():
        raise FileNotFoundError(f"{model_path} is not the {model_name}.onnx model file; use find_rembg_model().")
    try:
        import rembg
    except ImportError as err:
        raise ImportError(
            "Background removal needs rembg and onnxruntime: `pip install rembg onnxruntime` "
            "(or pass a mask / an RGBA image instead)."
        ) from err
    with _env("U2NET_HOME", str(model_path.parent.resolve())):
        return rembg.new_session(model_name)


def remove_background(rgb: Tensor, model_path: str | Path, model_name: str, session: Any = None) -> Tensor:
    """Foreground alpha [H, W] in [0, 1] for rgb [3, H, W] in [0, 1], with rembg's own session code.

    `session` (from `rembg_session`) is reused when given; otherwise one is made for this image.
    """
    if session is None:
        session = rembg_session(model_path, model_name)
    import rembg

    pil = Image.fromarray((rgb.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy(), mode="RGB")
    mask = rembg.remove(pil, session=session, only_mask=True)
    arr = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    if arr.shape != tuple(rgb.shape[-2:]):
        raise ValueError(f"rembg returned a {arr.shape} mask for a {tuple(rgb.shape[-2:])} image.")
    return torch.from_numpy(arr.copy())
