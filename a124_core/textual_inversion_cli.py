"""`python -m a124_core textual-inversion --image a.png --image b.png ... --token _dog_ --initializer dog --out OUT`.

Textual inversion on its own: one learned token for the subject of one or several photos (Dream-in-4D's
personalised 4D takes 4-6), written as `OUT/<token>.safetensors` (the file ComfyUI's `embedding:<token>` and
diffusers' `load_textual_inversion` read). A photo with alpha is trained on white, as the pipeline's reference;
one without is used as it is, centre-cropped to a square. Bad input stops with one line and exit status 2 before
any model is built or file written.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from .presets import PRESETS


def add_parser(sub: Any) -> None:
    """The `textual-inversion` subcommand (its handler is `main`)."""
    p = sub.add_parser("textual-inversion", help="photos of a subject -> one learned token (<token>.safetensors)")
    p.add_argument("--image", type=Path, action="append", required=True, help="a photo of the subject; repeat it")
    p.add_argument("--token", required=True, help="the new token, e.g. _dog_ (lower case, letters/digits/_/-)")
    p.add_argument("--initializer", required=True, help="one word the token starts from, e.g. dog")
    p.add_argument("--out", type=Path, required=True, help="output folder (<token>.safetensors and its checkpoint)")
    p.add_argument("--preset", default="smoke", help=f"steps and batch of one of {', '.join(PRESETS)} (default smoke)")
    p.add_argument("--models-dir", type=Path, help="ComfyUI's models folder (not for smoke)")
    p.add_argument("--sd-model", type=Path, help="SD diffusers folder or .safetensors (default SD1.5's folder)")
    p.add_argument("--sd-config", type=Path, help="config folder of a single-file --sd-model")
    p.add_argument("--steps", type=int, help="optimizer steps (default: the preset's)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/<token>.ti-checkpoint.safetensors")
    p.add_argument("--seed", type=int, default=3407)
    p.add_argument("--device", help="cuda, cuda:1 or cpu (default: cuda when available)")
    p.set_defaults(handler=main)


def subject_image(path: Path) -> Any:
    """A photo as straight RGBA [4, S, S] in [0, 1]: its alpha when it has one, else opaque; centre-cropped."""
    import numpy as np
    import torch

    from .reference.inputs import load_image_file

    image = load_image_file(path, "subject image")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    rgba = torch.from_numpy(np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0).permute(2, 0, 1)
    if not has_alpha:
        rgba[3] = 1.0
    h, w = rgba.shape[-2:]
    side = min(h, w)
    return rgba[:, (h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side].contiguous()


def _validate(args: argparse.Namespace) -> tuple[Any, list[Any], Any, Any]:
    """Every check that needs no model, in order; returns (config, images, model paths or None, device)."""
    from .devices import resolve_device
    from .pipeline import check_output_folder
    from .pipeline.models import ModelPaths
    from .presets import preset
    from .weight_files import check_weight_files

    chosen = preset(args.preset).with_seed(args.seed)
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}.")
    config = replace(
        chosen.textual_inversion,
        token=args.token,
        initializer=args.initializer,
        steps=args.steps or chosen.textual_inversion.steps,
    )
    images = [subject_image(path) for path in args.image]
    device = resolve_device(args.device)
    paths = None
    if args.preset != "smoke":
        if args.models_dir is None and args.sd_model is None:
            raise ValueError("Presets other than smoke need --models-dir or --sd-model (the SD prior).")
        paths = ModelPaths.from_models_dir(args.models_dir or Path("."), sd=args.sd_model, sd_config=args.sd_config)
        missing = paths.missing_files(only=("sd",))
        if missing:
            raise FileNotFoundError("Model files are missing (see README: model files): " + "; ".join(missing))
        check_weight_files(paths.sd)
    check_output_folder(Path(args.out))
    return config, images, paths, device


def textual_inversion(args: argparse.Namespace, should_cancel: Any = None) -> Any:
    """Validate, load SD, train; returns the `TextualInversionResult` (its file is OUT/<token>.safetensors)."""
    from .console import ConsoleProgress
    from .pipeline import SMOKE_WARNING
    from .priors.sd import StableDiffusionPrior
    from .textual_inversion.trainer import train_textual_inversion
    from .training.runner import Callbacks

    config, images, paths, device = _validate(args)
    out = Path(args.out)
    if paths is None:
        from .priors.tiny import build_tiny_models

        sys.stderr.write(SMOKE_WARNING + "\n")
        sd, sd_config = build_tiny_models(out / "tiny_models").sd15, None
    else:
        sd, sd_config = paths.sd, paths.sd_config
    prior = StableDiffusionPrior.from_pretrained(sd, device=device, config_dir=sd_config)
    checkpoint = out / f"{config.token}.ti-checkpoint.safetensors"
    return train_textual_inversion(
        prior,
        images,
        config,
        output_dir=out,
        checkpoint_path=checkpoint,
        resume_from=checkpoint if args.resume and checkpoint.is_file() else None,
        callbacks=Callbacks(on_progress=ConsoleProgress("textual_inversion"), should_cancel=should_cancel),
    )


def main(args: argparse.Namespace) -> int:
    """0 done, 2 bad input (one line on stderr), 130 interrupted (the checkpoint is written; rerun with --resume)."""
    from .interrupts import cancel_on_signals
    from .training.runner import TrainingCancelled

    try:
        with cancel_on_signals() as cancel:
            result = textual_inversion(args, cancel)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingCancelled as cancelled:
        print(f"interrupted at step {cancelled.step}: rerun the same command with --resume", file=sys.stderr)
        return 130
    print(f"done: {result.path} ({len(args.image)} image(s), {result.step} steps)")
    return 0


__all__ = ["add_parser", "main", "subject_image", "textual_inversion"]
