"""The whole job without ComfyUI: preprocess -> textual inversion -> static -> coarse -> refine -> render.

Everything is validated before the first model loads or the first file is written (`validate`): the images
(fully decoded), mask and depth inputs, the prompt, the preset and representation, the device, the render
settings, (unless the smoke preset builds tiny random priors) every model file, on `resume` the run folder's
record, and last the output folder. Each stage writes its checkpoint into `<out>/checkpoints/`; `resume=True`
skips finished stages and continues an interrupted one from its last checkpoint, only when
`<out>/run_record.json` says the folder holds this same run (image, prompts, seed, preset, representation, priors).

Read top-down: `settings` (what was asked) -> `models` (where the priors are) -> `validate` -> `prepare`
(reference, priors) -> `train` (the stages) -> `render` (videos, GLB) -> `job` (all of it).
"""

from .job import run
from .models import ModelPaths, load_priors
from .prepare import PreparedRun, check_cancelled, prepare
from .render import render_outputs
from .settings import SMOKE_WARNING, TEXT_ONLY_NOTE, RunSettings, RunSummary
from .train import textual_inversion, train_all
from .validate import CheckedInputs, check_output_folder, run_fingerprint, validate

__all__ = [
    "SMOKE_WARNING",
    "TEXT_ONLY_NOTE",
    "CheckedInputs",
    "ModelPaths",
    "PreparedRun",
    "RunSettings",
    "RunSummary",
    "check_cancelled",
    "check_output_folder",
    "load_priors",
    "prepare",
    "render_outputs",
    "run",
    "run_fingerprint",
    "textual_inversion",
    "train_all",
    "validate",
]
