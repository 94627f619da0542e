"""What every node module shares: the pinned ComfyUI node API, the pack's wire types, ComfyUI folders, the training
context, progress callbacks and input checks.

The nodes use ComfyUI's V3 node schema at API version 0.0.2 (`comfy_api.v0_0_2`, shipped by ComfyUI 0.3.64 through
0.8.0 and later). Everything else of ComfyUI (`folder_paths`, `comfy.*`) is imported inside functions, so without
`comfy` the progress bar and interrupt checks are skipped and training runs on the CPU (the tests' stand-ins).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from comfy_api.v0_0_2 import io
from PIL import Image
from torch import Tensor

from a124_core.priors.base import PriorKind

CATEGORY = "Animate124"

# ----------------------------------------------------------------------------------------------- wire types
#: The kind of a prior is part of its wire type, so a prior of the wrong kind cannot pass validation.
PRIOR_TYPES = {
    PriorKind.IMAGE_TEXT: io.Custom("A124_PRIOR_IMAGE_TEXT"),
    PriorKind.IMAGE_POSE: io.Custom("A124_PRIOR_IMAGE_POSE"),
    PriorKind.VIDEO_TEXT: io.Custom("A124_PRIOR_VIDEO_TEXT"),
    PriorKind.IMAGE_CONTROL: io.Custom("A124_PRIOR_IMAGE_CONTROL"),
    PriorKind.IMAGE_TEXT_MULTIVIEW: io.Custom("A124_PRIOR_IMAGE_TEXT_MULTIVIEW"),
}
Reference = io.Custom("A124_REFERENCE")
#: A reference clip (video to 4D): recentred frames, masks and times of the user's video (Reference Video).
ReferenceClipWire = io.Custom("A124_REFERENCE_CLIP")
#: What a stage's reference input takes: one image, or a clip (the static stage uses the clip's first frame).
REFERENCES = (Reference, ReferenceClipWire)
Embedding = io.Custom("A124_EMBEDDING")
#: Scenes come as wire types by stage, so a static scene cannot be wired into a node that needs a dynamic one and a
#: refined scene cannot become the refine stage's condition (it must be the coarse one, SPEC 5).
SceneStatic = io.Custom("A124_SCENE_STATIC")
SceneDynamic = io.Custom("A124_SCENE_DYNAMIC")
SceneRefined = io.Custom("A124_SCENE_REFINED")
DYNAMIC_SCENES = (SceneDynamic, SceneRefined)
ANY_SCENE = (SceneStatic, SceneDynamic, SceneRefined)


#: validate_inputs default of an optional link input: not wired (a wired input is None at validation time).
NOT_WIRED = object()


def scene_input(name: str, types: tuple, tooltip: str, optional: bool = False) -> Any:
    """An input taking any scene of `types` (ComfyUI checks links against their union)."""
    return io.MultiType.Input(name, types=list(types), tooltip=tooltip, optional=optional)


#: ComfyUI model folder registered by the pack (models/animate124): priors, configs, scenes.
MODEL_FOLDER = "animate124"
#: Files a ComfyUI model folder of ours lists (folders are listed separately).
MODEL_EXTENSIONS = {".safetensors"}


# ----------------------------------------------------------------------------------------------- representations
def representation_names() -> list[str]:
    """Names of the dynamic representations the coarse stage offers (the one place the nodes read them)."""
    from a124_core.training.representations import REPRESENTATIONS

    return list(REPRESENTATIONS)


def default_representation() -> str:
    from a124_core.training.representations import DEFAULT_REPRESENTATION

    return DEFAULT_REPRESENTATION


def representation_description() -> str:
    """One tooltip line per representation, from the registry."""
    from a124_core.training.representations import REPRESENTATIONS

    return " ".join(f"{name}: {r.description}." for name, r in REPRESENTATIONS.items())


def representation_name(field: Any) -> str:
    """The representation name of a trained dynamic field (what the refine stage continues)."""
    from a124_core.training.representations import representation_of

    return representation_of(field).name


# ----------------------------------------------------------------------------------------------- input checks
def check_numbers(node: type, **values: Any) -> bool | str:
    """validate_inputs part: each named INT/FLOAT widget finite and within the min/max its schema declares.

    ComfyUI leaves the range check of every input `validate_inputs` names to the node, and a NaN passes its
    comparisons; linked values (None at validation time) are skipped.
    """
    declared = {i.id: i for i in node.define_schema().inputs}
    for name, value in values.items():
        if value is None:
            continue
        low, high = getattr(declared[name], "min", None), getattr(declared[name], "max", None)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"{name}={value!r} is not a finite number."
        if (low is not None and value < low) or (high is not None and value > high):
            return f"{name}={value} is outside [{low}, {high}]."
    return True


#: validate_inputs' default for an optional link input: ComfyUI passes a wired one as None (its value is not known
#: yet) and leaves an unwired one out, so this default means "not wired".
NOT_WIRED = "not wired"


def check_prompts(**prompts: str | None) -> bool | str:
    """validate_inputs part: a prompt that is not empty must have a word in it ("!!! ???" would train the whole run
    on noise). `embedding:name` is a word here: ComfyUI's text encoders resolve it. Linked prompts (None) pass."""
    from a124_core.prompts import wordless_prompt

    for name, text in prompts.items():
        if text is not None and text.strip() and (line := wordless_prompt(text, name)) is not None:
            return line
    return True


def first_error(*checks: bool | str) -> bool | str:
    """The first message among validate_inputs checks, or True."""
    return next((c for c in checks if c is not True), True)


# ----------------------------------------------------------------------------------------------- ComfyUI folders
def folder_paths() -> Any:
    """ComfyUI's `folder_paths` module (a stand-in in tests); registers the `animate124` folder once."""
    import folder_paths as fp

    if MODEL_FOLDER not in fp.folder_names_and_paths or not fp.folder_names_and_paths[MODEL_FOLDER][1]:
        default = os.path.join(fp.models_dir, MODEL_FOLDER)
        paths = fp.folder_names_and_paths.get(MODEL_FOLDER, ([], set()))[0]
        if default not in paths:
            paths.insert(0, default)
        fp.folder_names_and_paths[MODEL_FOLDER] = (paths, set(MODEL_EXTENSIONS))
    return fp


def search_paths(folder: str) -> list[str]:
    fp = folder_paths()
    return fp.get_folder_paths(folder) if folder in fp.folder_names_and_paths else []


def list_model_dirs(folders: tuple[str, ...], marker: tuple[str, ...]) -> list[str]:
    """Entries "<folder>/<name>" for sub-folders (one level, or two under animate124) holding any of `marker`."""
    found: list[str] = []
    for folder in folders:
        for root in search_paths(folder):
            base = Path(root)
            if not base.is_dir():
                continue
            candidates = [p for p in base.iterdir() if p.is_dir()]
            candidates += [q for p in candidates for q in p.iterdir() if q.is_dir()] if folder == MODEL_FOLDER else []
            for cand in sorted(candidates):
                if any((cand / m).exists() for m in marker):
                    found.append(f"{folder}/{cand.relative_to(base).as_posix()}")
    return sorted(dict.fromkeys(found))


def list_model_files(folders: tuple[str, ...], suffixes: tuple[str, ...] = (".safetensors",)) -> list[str]:
    """Entries "<folder>/<file>" for model files ComfyUI lists in `folders`."""
    fp = folder_paths()
    found = []
    for folder in folders:
        if folder in fp.folder_names_and_paths:
            found += [f"{folder}/{name}" for name in fp.get_filename_list(folder) if name.endswith(suffixes)]
    return sorted(dict.fromkeys(found))


def resolve_entry(entry: str, what: str) -> Path:
    """ "<folder>/<relative path>" -> an existing path; the error names the folders searched."""
    folder, _, rel = entry.partition("/")
    if not rel:
        raise ValueError(f"{what}: {entry!r} is not a '<folder>/<name>' entry; pick one from the list.")
    roots = search_paths(folder)
    for root in roots:
        path = Path(root) / rel
        if path.exists():
            return path
    raise FileNotFoundError(
        f"{what}: {rel!r} not found in the ComfyUI '{folder}' folders searched: {', '.join(roots) or '(none)'}. "
        f"Put the model there (see docs/nodes.md) and refresh."
    )


def check_entries(**entries: tuple[str | None, str]) -> bool | str:
    """validate_inputs part: every (entry, what) must resolve; 'none' and linked (None) are allowed."""
    for entry, what in entries.values():
        if entry in (None, "none"):
            continue
        try:
            resolve_entry(entry, what)
        except (FileNotFoundError, ValueError) as err:
            return str(err)
    return True


# ----------------------------------------------------------------------------------------------- devices, training
def torch_device() -> torch.device:
    """ComfyUI's compute device (honours --cpu); CPU when ComfyUI is absent."""
    try:
        import comfy.model_management as mm
    except ImportError:
        return torch.device("cpu")
    return torch.device(mm.get_torch_device())


@contextlib.contextmanager
def training_mode() -> Iterator[None]:
    """ComfyUI runs nodes under inference mode; training needs autograd and tensors that are not inference tensors."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def clone_tree(value: Any) -> Any:
    """A deep copy made outside inference mode (inputs are never changed in place; inference tensors become normal)."""
    with torch.inference_mode(False):
        return copy.deepcopy(value) if not isinstance(value, Tensor) else value.clone()


def image_to_pil(image: Tensor) -> Image.Image:
    """[H, W, 3] in [0, 1] -> PIL RGB (previews)."""
    arr = (image.detach().float().clamp(0, 1) * 255).round().byte().cpu().numpy().astype(np.uint8)
    return Image.fromarray(arr, mode="RGB")


class Progress:
    """ComfyUI progress bar + preview + interrupt check, as the library runner's `Callbacks`.

    `should_cancel` lets the runner write a checkpoint before stopping; when ComfyUI's interrupt is raised by the
    progress bar itself, the runner writes the checkpoint before it propagates.
    """

    def __init__(self, total: int):
        self.total = total
        try:
            import comfy.model_management as mm
            import comfy.utils
        except ImportError:
            self.bar, self.mm = None, None
        else:
            self.bar, self.mm = comfy.utils.ProgressBar(total), mm

    def should_cancel(self) -> bool:
        return bool(self.mm is not None and self.mm.processing_interrupted())

    def raise_interrupt(self) -> None:
        """Turn the library's cancellation into ComfyUI's interrupt (clears the flag)."""
        if self.mm is not None:
            self.mm.throw_exception_if_processing_interrupted()

    def update(self, step: int, total: int, losses: dict[str, float], preview: Tensor | None) -> None:
        """Signature of `a124_core.training.runner.Callbacks.on_progress`."""
        if self.bar is not None:
            shown = None if preview is None else ("JPEG", image_to_pil(preview), 512)
            self.bar.update_absolute(step, total, shown)

    def callbacks(self) -> Any:
        from a124_core.training.runner import Callbacks

        return Callbacks(on_progress=self.update, should_cancel=self.should_cancel)


def upstream_digests(**scenes: Any) -> dict[str, str]:
    """name -> digest of each upstream scene a stage is built from (recorded in its checkpoints)."""
    from a124_core.training.scene import scene_digest

    return {name: scene_digest(scene) for name, scene in scenes.items()}


def check_resume_parents(resume: Any, resume_from: str, parents: dict[str, str]) -> None:
    """A checkpoint trained on another upstream scene than the one wired (that stage trained again) would mix two
    runs: ValueError in one line. A checkpoint that records no digests (from before they were kept) passes."""
    from a124_core.training.scene import read_header

    recorded = read_header(resume).get("parents")
    stale = [name for name in parents if recorded is not None and recorded.get(name) != parents[name]]
    if stale:
        raise ValueError(
            f"resume_from {resume_from!r} was trained on another {' and '.join(stale)} scene than the one wired in; "
            f"clear resume_from to train this stage again, or wire the scene it was trained on."
        )


def train_stage_node(
    make_stage: Any, run_name: str, resume_from: str, parents: dict[str, str] | None = None
) -> tuple[Any, Any, str]:
    """Build the stage under training mode, train it with ComfyUI progress (an interrupt leaves
    `<stage>_latest.safetensors` to resume from), return (scene, preview [1, H, W, 3], checkpoint path). `parents`
    (`upstream_digests`) is recorded in the checkpoints; a `resume_from` trained on other parents is refused."""
    from a124_core.training.runner import TrainingCancelled, checkpoint_path, train

    from .output_files import output_dir, resolve_output_file

    folder = output_dir("checkpoints", run_name.strip() or "animate124")
    resume = resolve_output_file(resume_from, "Checkpoint") if resume_from.strip() else None
    if resume is not None and parents:
        check_resume_parents(resume, resume_from, parents)
    with training_mode():
        stage = make_stage()
        earlier = checkpoint_path(folder, stage.name, final=True)
        if resume is None and earlier.is_file():  # a fresh run replaces only its own stage's file, said in one line
            print(f"[animate124] {stage.name}: this run replaces {earlier} (set run_name to keep the earlier one)")
        progress = Progress(stage.config.steps)
        try:
            scene = train(stage, progress.callbacks(), folder, resume, parents)
        except TrainingCancelled:
            progress.raise_interrupt()
            raise
        preview = stage.preview()[None]
    return (scene, preview, str(checkpoint_path(folder, stage.name, final=True)))
